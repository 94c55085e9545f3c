//! The nemesis: starts and heals the faults of a schedule on the real elder processes and their
//! real traffic, and notices an elder that exits when nobody killed it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::chaos::firewall::{Cut, Firewall, FirewallError};
use crate::chaos::scenario::{Event, Fault};
use crate::elders::{binary_beside, elder_name, ElderError, Elders, Signal};
use crate::limits::STOP_PATIENCE;

/// The lying elder binary, built beside `testnet`.
pub const BYZANTINE_BINARY: &str = "byzantine-elder";

/// Why a fault could not be started or healed.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// A process could not be started or signalled.
    #[error(transparent)]
    Elders(#[from] ElderError),
    /// The firewall could not be changed.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
}

/// A fault as it happened, for the report and the live page.
#[derive(Clone, Debug, Serialize)]
pub struct Injected {
    /// Its kind.
    pub kind: &'static str,
    /// The elders it touched, as `section/index`.
    pub elders: Vec<String>,
    /// What exactly, in words.
    pub what: String,
    /// When it started and was healed, in ms since the load began.
    pub from_ms: u64,
    /// When it was healed.
    pub to_ms: Option<u64>,
}

/// The faults being applied to one network.
pub struct Nemesis {
    elders: Elders,
    firewall: Option<Firewall>,
    per_section: usize,
    liar: Option<PathBuf>,
    /// Elders this nemesis took down (and so must not count as having exited on their own).
    down: BTreeSet<usize>,
    active: BTreeMap<u64, (Event, usize)>,
    /// Every fault started, in order.
    pub injected: Vec<Injected>,
}

impl Nemesis {
    /// A nemesis over running `elders`; `firewall` is needed for network faults and the lying
    /// binary for byzantine ones (both are checked before the run starts).
    pub fn new(
        elders: Elders,
        firewall: Option<Firewall>,
        byzantine: bool,
    ) -> Result<Nemesis, NemesisError> {
        let per_section = elders
            .genesis()
            .elders
            .iter()
            .filter(|e| e.prefix == elders.genesis().elders[0].prefix)
            .count();
        let liar = if byzantine { Some(binary_beside(BYZANTINE_BINARY)?) } else { None };
        Ok(Nemesis {
            elders,
            firewall,
            per_section,
            liar,
            down: BTreeSet::new(),
            active: BTreeMap::new(),
            injected: Vec::new(),
        })
    }

    /// The elder processes, once the run is over.
    pub fn into_elders(self) -> Elders {
        self.elders
    }

    fn names(&self, positions: &[usize]) -> Vec<String> {
        positions.iter().map(|p| elder_name(&self.elders.genesis().elders[*p])).collect()
    }

    /// Starts fault `id` at `now_ms`.
    pub fn start(&mut self, id: u64, event: &Event, now_ms: u64) -> Result<(), NemesisError> {
        let targets = event.fault.elders(self.per_section);
        let what = match &event.fault {
            Fault::Crash { .. } | Fault::SectionDown { .. } => {
                for &elder in &targets {
                    self.elders.signal(elder, Signal::Kill);
                    self.down.insert(elder);
                }
                "SIGKILL".to_string()
            }
            Fault::Pause { .. } => {
                for &elder in &targets {
                    self.elders.signal(elder, Signal::Stop);
                }
                "SIGSTOP".to_string()
            }
            Fault::Partition { elders, direction } => {
                let group =
                    elders.iter().map(|e| self.elders.genesis().elders[*e].listen.port()).collect();
                self.firewall().add(id, Cut::Partition { group, direction: *direction })?;
                format!("cut off from the other elders ({direction:?})").to_lowercase()
            }
            Fault::Loss { percent, between } => {
                self.firewall().add(id, Cut::Loss { percent: *percent, between: *between })?;
                format!("{percent} % of packets dropped between {between:?}").to_lowercase()
            }
            Fault::Byzantine { elder, lie } => {
                self.elders.signal(*elder, Signal::Kill);
                let liar = self.liar.clone().expect("checked when the run began");
                let lie = serde_json::to_value(lie).expect("a lie has a name");
                let lie = lie.as_str().unwrap_or_default().to_string();
                self.elders.spawn_with(*elder, &liar, &["--lie".to_string(), lie.clone()])?;
                format!("lies: {lie}")
            }
        };
        self.injected.push(Injected {
            kind: event.fault.kind().name(),
            elders: self.names(&targets),
            what,
            from_ms: now_ms,
            to_ms: None,
        });
        self.active.insert(id, (event.clone(), self.injected.len() - 1));
        Ok(())
    }

    /// Heals fault `id` at `now_ms`, if it is active.
    pub fn heal(&mut self, id: u64, now_ms: u64) -> Result<(), NemesisError> {
        let Some((event, record)) = self.active.remove(&id) else { return Ok(()) };
        self.injected[record].to_ms = Some(now_ms);
        let targets = event.fault.elders(self.per_section);
        match &event.fault {
            Fault::Crash { .. } | Fault::SectionDown { .. } => {
                for &elder in &targets {
                    self.down.remove(&elder);
                    self.elders.spawn(elder)?;
                }
            }
            Fault::Pause { .. } => {
                for &elder in &targets {
                    self.elders.signal(elder, Signal::Continue);
                }
            }
            Fault::Partition { .. } | Fault::Loss { .. } => self.firewall().remove(id)?,
            Fault::Byzantine { elder, .. } => {
                // Its store is an honest elder's (it lied only on the wire): the honest
                // binary carries on from it.
                self.down.insert(*elder);
                self.elders.signal(*elder, Signal::Terminate);
                if self.elders.wait_exit(*elder, STOP_PATIENCE).is_none() {
                    self.elders.signal(*elder, Signal::Kill);
                }
                self.down.remove(elder);
                self.elders.spawn(*elder)?;
            }
        }
        Ok(())
    }

    /// Heals every active fault at `now_ms`, all of them even if one fails (the first
    /// failure is returned).
    pub fn heal_all(&mut self, now_ms: u64) -> Result<(), NemesisError> {
        let ids: Vec<u64> = self.active.keys().copied().collect();
        let healed: Vec<Result<(), NemesisError>> =
            ids.into_iter().map(|id| self.heal(id, now_ms)).collect();
        if let Some(firewall) = &mut self.firewall {
            firewall.clear();
        }
        healed.into_iter().collect()
    }

    /// Elders that exited without being killed, with how; each is started again.
    pub fn unexpected_exits(&mut self) -> Result<Vec<(String, String)>, NemesisError> {
        let mut exits = Vec::new();
        for position in 0..self.elders.genesis().elders.len() {
            if self.down.contains(&position) {
                continue;
            }
            if let Some(status) = self.elders.exited(position) {
                exits.push((self.names(&[position])[0].clone(), status.to_string()));
                self.elders.spawn(position)?;
            }
        }
        Ok(exits)
    }

    /// Packets the network faults dropped, by kind, and the mean firewall update time.
    pub fn dropped(&self) -> (BTreeMap<&'static str, u64>, f64) {
        match &self.firewall {
            Some(firewall) => (firewall.dropped(), firewall.mean_update_ms()),
            None => (BTreeMap::new(), 0.0),
        }
    }

    fn firewall(&mut self) -> &mut Firewall {
        self.firewall.as_mut().expect("made when the run began, for a schedule with network faults")
    }
}

/// How long to wait between two looks at the schedule.
pub const TICK: Duration = Duration::from_millis(50);
