//! Who may hold a connection: handshakes in progress are bounded in all and per address; after
//! the handshake the elders of the map (known by their certificates) take slots of their own,
//! which no client can use up, and clients share a bounded pool with a limit per address.
//! A slot is given back when its guard is dropped.

use crate::limits::{
    CLIENT_CONNECTIONS_MAX, CLIENT_CONNECTIONS_PER_ADDRESS_MAX, CONNECTIONS_PER_ELDER_MAX,
    HANDSHAKES_MAX, HANDSHAKES_PER_ADDRESS_MAX,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What a slot was taken for.
#[derive(Clone, Copy)]
enum Kind {
    Handshake(IpAddr),
    Client(IpAddr),
    Elder,
}

#[derive(Default)]
struct Counts {
    handshakes: usize,
    handshakes_by_address: HashMap<IpAddr, usize>,
    clients: usize,
    clients_by_address: HashMap<IpAddr, usize>,
    elders: usize,
}

/// The connection slots of one elder's endpoint.
pub struct Admission {
    elders_max: usize,
    counts: Mutex<Counts>,
}

/// A taken slot; dropping it gives it back.
pub struct Slot {
    admission: Arc<Admission>,
    kind: Kind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        match self.kind {
            Kind::Handshake(address) => {
                counts.handshakes -= 1;
                release(&mut counts.handshakes_by_address, address);
            }
            Kind::Client(address) => {
                counts.clients -= 1;
                release(&mut counts.clients_by_address, address);
            }
            Kind::Elder => counts.elders -= 1,
        }
    }
}

fn release(by_address: &mut HashMap<IpAddr, usize>, address: IpAddr) {
    let count = by_address.get_mut(&address).expect("taken before it is given back");
    *count -= 1;
    if *count == 0 {
        by_address.remove(&address);
    }
}

impl Admission {
    /// Slots for an endpoint in a network of `elders` elders.
    pub fn new(elders: usize) -> Arc<Admission> {
        let elders_max = elders.saturating_mul(CONNECTIONS_PER_ELDER_MAX);
        Arc::new(Admission { elders_max, counts: Mutex::new(Counts::default()) })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().expect("no thread panics holding the counts")
    }

    /// A slot for a handshake from `address`, if there is room.
    pub fn handshake(self: &Arc<Self>, address: IpAddr) -> Option<Slot> {
        let mut counts = self.counts();
        let from_address = counts.handshakes_by_address.get(&address).copied().unwrap_or(0);
        if counts.handshakes >= HANDSHAKES_MAX || from_address >= HANDSHAKES_PER_ADDRESS_MAX {
            return None;
        }
        counts.handshakes += 1;
        *counts.handshakes_by_address.entry(address).or_default() += 1;
        Some(Slot { admission: self.clone(), kind: Kind::Handshake(address) })
    }

    /// A slot for an established connection: an elder's from the elders' own slots, a
    /// client's from the clients' pool within its address's share.
    pub fn connection(self: &Arc<Self>, address: IpAddr, is_elder: bool) -> Option<Slot> {
        let mut counts = self.counts();
        let kind = if is_elder {
            if counts.elders >= self.elders_max {
                return None;
            }
            counts.elders += 1;
            Kind::Elder
        } else {
            let from_address = counts.clients_by_address.get(&address).copied().unwrap_or(0);
            if counts.clients >= CLIENT_CONNECTIONS_MAX
                || from_address >= CLIENT_CONNECTIONS_PER_ADDRESS_MAX
            {
                return None;
            }
            counts.clients += 1;
            *counts.clients_by_address.entry(address).or_default() += 1;
            Kind::Client(address)
        };
        Some(Slot { admission: self.clone(), kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_client_slot_and_clients_never_take_the_elders() {
        let admission = Admission::new(2);
        let (flooder, honest): (IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap());
        let held: Vec<Slot> = (0..CLIENT_CONNECTIONS_PER_ADDRESS_MAX)
            .map(|_| admission.connection(flooder, false).expect("within the address's share"))
            .collect();
        assert!(admission.connection(flooder, false).is_none(), "the address's share is full");
        let honest_slot = admission.connection(honest, false).expect("another address is served");
        let elders: Vec<Slot> = (0..2 * CONNECTIONS_PER_ELDER_MAX)
            .map(|_| admission.connection(flooder, true).expect("elders have their own slots"))
            .collect();
        assert!(admission.connection(honest, true).is_none(), "elder slots are bounded too");
        drop(held);
        assert!(admission.connection(flooder, false).is_some(), "slots come back when dropped");
        drop((honest_slot, elders));
        let handshakes: Vec<Slot> = (0..HANDSHAKES_PER_ADDRESS_MAX)
            .map(|_| admission.handshake(flooder).expect("within the address's share"))
            .collect();
        assert!(admission.handshake(flooder).is_none());
        assert!(admission.handshake(honest).is_some());
        drop(handshakes);
        assert!(admission.handshake(flooder).is_some());
    }
}
