//! The network map file: read with a bound, decoded, and checked before anyone uses it.

use std::path::Path;

use shared::codec;
use shared::limits::MESSAGE_BYTES_MAX;
use shared::network::{Network, NetworkMap};

use crate::files::{self, FileError};

/// Why a network map file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not a valid map.
    #[error("network map {path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Reads and checks a network map file.
pub fn read(path: &Path) -> Result<Network, MapError> {
    let bytes = files::read_bounded(path, MESSAGE_BYTES_MAX)?;
    let invalid = |problem: String| MapError::Invalid { path: path.display().to_string(), problem };
    let map: NetworkMap = codec::decode(&bytes)
        .map_err(|error| invalid(format!("is not a network map ({error})")))?;
    Network::new(map).map_err(|error| invalid(error.to_string()))
}
