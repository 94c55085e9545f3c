//! One object-safe view of every client driver (whatever its outcome type), so a simulated
//! client or the bundler can hold drivers of several kinds and run them alike.

use shared::driver::{Drive, Ready};
use shared::messages::ClientReply;
use shared::types::ElderIndex;

/// The part of [`Drive`] a simulated party runs its drivers by.
pub trait DriveDyn {
    /// [`Drive::handle_reply`].
    fn handle_reply(
        &mut self,
        elder: ElderIndex,
        tag: u64,
        reply: Result<ClientReply, String>,
        now: u64,
    );
    /// [`Drive::handle_timeout`].
    fn handle_timeout(&mut self, now: u64);
    /// [`Drive::poll_timeout`].
    fn poll_timeout(&self) -> Option<u64>;
    /// [`Drive::poll`].
    fn poll(&mut self) -> Ready;
}

impl<D: Drive> DriveDyn for D {
    fn handle_reply(
        &mut self,
        elder: ElderIndex,
        tag: u64,
        reply: Result<ClientReply, String>,
        now: u64,
    ) {
        Drive::handle_reply(self, elder, tag, reply, now)
    }

    fn handle_timeout(&mut self, now: u64) {
        Drive::handle_timeout(self, now)
    }

    fn poll_timeout(&self) -> Option<u64> {
        Drive::poll_timeout(self)
    }

    fn poll(&mut self) -> Ready {
        Drive::poll(self)
    }
}
