//! The one place that calls bincode: one explicit configuration and a byte limit.
//!
//! Little-endian fixed-width integers make the encoding canonical (one byte string per value),
//! which the signing bytes and the wire-format snapshot rely on. The limit bounds both what is
//! produced and every allocation a hostile length prefix could ask for while decoding.

use bincode::config::{self, Configuration, Fixint, Limit, LittleEndian};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::limits::MESSAGE_BYTES_MAX;

type Config = Configuration<LittleEndian, Fixint, Limit<MESSAGE_BYTES_MAX>>;

const CONFIG: Config = config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MESSAGE_BYTES_MAX>();

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value or the input is larger than `MESSAGE_BYTES_MAX`.
    #[error("message is larger than the {max}-byte limit")]
    TooLarge {
        /// The limit that was hit.
        max: usize,
    },
    /// The bytes do not decode as the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The bytes decode, but bytes are left over after the value.
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Encodes `value`; fails if the encoding would exceed `MESSAGE_BYTES_MAX` (bincode applies
/// its limit to decoding only, so the length is checked here).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, CONFIG)
        .map_err(|error| CodecError::Malformed(error.to_string()))?;
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Decodes one whole value from `bytes`; any malformed, oversized or trailing input is an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(too_large());
    }
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|error| match error {
            bincode::error::DecodeError::LimitExceeded => too_large(),
            other => CodecError::Malformed(other.to_string()),
        })?;
    match bytes.len() - read {
        0 => Ok(value),
        extra => Err(CodecError::TrailingBytes { extra }),
    }
}

fn too_large() -> CodecError {
    CodecError::TooLarge { max: MESSAGE_BYTES_MAX }
}
