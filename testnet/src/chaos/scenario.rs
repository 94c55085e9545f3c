//! Chaos scenarios: the TOML files under `testnet/chaos/`, and the fault schedule a seed draws
//! from one of them for a network of a given shape.
//!
//! A scenario is a list of fault kinds, each with how often it starts and how long it lasts:
//!
//! ```toml
//! description = "SIGKILL and restart of up to f elders per section at a time"
//! [[fault]]
//! kind = "crash"            # crash | pause | section-down | partition | loss | byzantine
//! every_seconds = 4.0       # mean time between two starts of this kind
//! lasts_seconds = [1.0, 5.0]  # how long each lasts, drawn uniformly from this range
//! elders = [1, 1]           # crash, pause, partition: how many elders at once (at most f)
//! direction = "both"        # partition: both | inbound | outbound
//! percent = [5, 30]         # loss: share of packets dropped
//! between = "elders"        # loss: elders | clients
//! lies = ["equivocate"]     # byzantine: which lies to draw from (all if left out)
//! ```
//!
//! The schedule is drawn from the seed alone (and the scenario and shape), so one seed always
//! gives the same faults. Faults that would make more than `f` elders of a section faulty at
//! once (crashed, paused, cut off or lying together) are left out; `section-down` takes every
//! elder of one section and is left out whenever anything else touches that section.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

/// The scenarios shipped in `testnet/chaos/`, by name; compiled in so the tool runs anywhere.
pub const SHIPPED: [(&str, &str); 7] = [
    ("crash", include_str!("../../chaos/crash.toml")),
    ("pause", include_str!("../../chaos/pause.toml")),
    ("section-down", include_str!("../../chaos/section-down.toml")),
    ("partition", include_str!("../../chaos/partition.toml")),
    ("loss", include_str!("../../chaos/loss.toml")),
    ("byzantine", include_str!("../../chaos/byzantine.toml")),
    ("mixed", include_str!("../../chaos/mixed.toml")),
];

/// Longest run a schedule is drawn for, and most fault starts it may hold.
const SCHEDULE_SECONDS_MAX: f64 = 7.0 * 24.0 * 3600.0;
const EVENTS_MAX: usize = 1_000_000;
/// Bounds on a scenario's numbers, so a typo cannot ask for nonsense.
const EVERY_SECONDS_MIN: f64 = 0.05;
const LASTS_SECONDS_MAX: f64 = 3_600.0;
/// Shortest fault: shorter ones would start and heal within one nemesis tick.
const LASTS_SECONDS_MIN: f64 = 0.1;
const LOSS_PERCENT_MAX: u32 = 100;

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// No shipped scenario has this name and no such file exists.
    #[error("no scenario `{0}`: give a file, or one of {names}", names = shipped_names())]
    Unknown(String),
    /// The file cannot be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a scenario.
    #[error("scenario {name}: {problem}")]
    Invalid {
        /// The scenario.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

fn shipped_names() -> String {
    SHIPPED.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// A chaos script: what faults to inject, how often and for how long.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The name it was found by.
    #[serde(skip)]
    pub name: String,
    /// One line on what it does.
    pub description: String,
    /// The fault kinds.
    #[serde(rename = "fault")]
    pub faults: Vec<FaultSpec>,
}

/// One kind of fault in a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What is done.
    pub kind: Kind,
    /// Mean seconds between two starts (starts are a Poisson process).
    pub every_seconds: f64,
    /// Range of how long each lasts, in seconds.
    pub lasts_seconds: [f64; 2],
    /// Crash, pause, partition: range of how many elders of one section at once.
    #[serde(default = "one_elder")]
    pub elders: [usize; 2],
    /// Partition: which traffic of the cut-off group is dropped.
    #[serde(default)]
    pub direction: Direction,
    /// Loss: range of the share of packets dropped, in percent.
    #[serde(default)]
    pub percent: [u32; 2],
    /// Loss: whose packets.
    #[serde(default)]
    pub between: Between,
    /// Byzantine: the lies drawn from (every lie if empty).
    #[serde(default)]
    pub lies: Vec<Lie>,
}

fn one_elder() -> [usize; 2] {
    [1, 1]
}

/// A fault kind.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// SIGKILL, then restart.
    Crash,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Every elder of one section killed, then restarted.
    SectionDown,
    /// A group of elders cut off from every other elder.
    Partition,
    /// A share of packets dropped.
    Loss,
    /// An elder replaced by a lying one.
    Byzantine,
}

impl Kind {
    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Crash => "crash",
            Kind::Pause => "pause",
            Kind::SectionDown => "section-down",
            Kind::Partition => "partition",
            Kind::Loss => "loss",
            Kind::Byzantine => "byzantine",
        }
    }
}

/// Which packets of a cut-off group are dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Both ways.
    #[default]
    Both,
    /// Only what the other elders send to the group.
    Inbound,
    /// Only what the group sends to the other elders.
    Outbound,
}

/// Whose packets a loss fault drops.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Between {
    /// Elder to elder.
    #[default]
    Elders,
    /// Client to elder and back.
    Clients,
}

pub use crate::lies::Lie;

/// One fault of a schedule, with its targets: elders by their position in genesis order.
#[derive(Clone, PartialEq, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// These elders killed, then restarted.
    Crash {
        /// The elders.
        elders: Vec<usize>,
    },
    /// These elders paused, then resumed.
    Pause {
        /// The elders.
        elders: Vec<usize>,
    },
    /// Every elder of this section killed, then restarted.
    SectionDown {
        /// The section's position in the map.
        section: usize,
    },
    /// These elders cut off from every other elder.
    Partition {
        /// The elders.
        elders: Vec<usize>,
        /// Which way.
        direction: Direction,
    },
    /// This share of packets dropped.
    Loss {
        /// Percent dropped.
        percent: u32,
        /// Whose packets.
        between: Between,
    },
    /// This elder replaced by one that lies so.
    Byzantine {
        /// The elder.
        elder: usize,
        /// The lie.
        lie: Lie,
    },
}

impl Fault {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Fault::Crash { .. } => Kind::Crash,
            Fault::Pause { .. } => Kind::Pause,
            Fault::SectionDown { .. } => Kind::SectionDown,
            Fault::Partition { .. } => Kind::Partition,
            Fault::Loss { .. } => Kind::Loss,
            Fault::Byzantine { .. } => Kind::Byzantine,
        }
    }

    /// The elders it makes faulty (all of a section for `section-down`; none for loss).
    pub fn elders(&self, elders_per_section: usize) -> Vec<usize> {
        match self {
            Fault::Crash { elders } | Fault::Pause { elders } | Fault::Partition { elders, .. } => {
                elders.clone()
            }
            Fault::SectionDown { section } => {
                (section * elders_per_section..(section + 1) * elders_per_section).collect()
            }
            Fault::Loss { .. } => vec![],
            Fault::Byzantine { elder, .. } => vec![*elder],
        }
    }
}

/// A fault at a time: it starts `at_ms` after the faults phase begins and is healed
/// `lasts_ms` later.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct Event {
    /// Start, in ms from the beginning of the faults phase.
    pub at_ms: u64,
    /// How long it lasts, in ms.
    pub lasts_ms: u64,
    /// What it is.
    pub fault: Fault,
}

impl Event {
    /// When it is healed, in ms from the beginning of the faults phase.
    pub fn end_ms(&self) -> u64 {
        self.at_ms + self.lasts_ms
    }
}

/// The network a schedule is drawn for.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Sections.
    pub sections: usize,
    /// Elders per section.
    pub elders: usize,
}

impl Shape {
    /// Faulty elders a section tolerates: n = 3f + 1.
    pub fn f(&self) -> usize {
        self.elders.saturating_sub(1) / 3
    }
}

impl Scenario {
    /// A shipped scenario by name, or a scenario file by path.
    pub fn find(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((name, text)) = SHIPPED.iter().find(|(name, _)| *name == name_or_path) {
            return Scenario::parse(name, text);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            return Err(ScenarioError::Unknown(name_or_path.to_string()));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
        Scenario::parse(name_or_path, &text)
    }

    /// Parses and checks a scenario's text.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let invalid = |problem: String| ScenarioError::Invalid { name: name.to_string(), problem };
        let mut scenario: Scenario =
            toml::from_str(text).map_err(|error| invalid(error.message().to_string()))?;
        scenario.name = name.to_string();
        for spec in &scenario.faults {
            spec.check().map_err(|problem| invalid(format!("{}: {problem}", spec.kind.name())))?;
        }
        Ok(scenario)
    }

    /// The faults a seed draws for `seconds` of faults on a network of `shape`, in start order.
    pub fn schedule(&self, seed: u64, seconds: f64, shape: Shape) -> Vec<Event> {
        let seconds = seconds.clamp(0.0, SCHEDULE_SECONDS_MAX);
        let mut wanted = Vec::new();
        for (index, spec) in self.faults.iter().enumerate() {
            // Each kind its own stream, so adding a kind leaves the others' times alone.
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            rng.set_stream(index as u64);
            let mut at = 0.0;
            loop {
                at += -spec.every_seconds * (1.0 - rng.gen::<f64>()).ln();
                if at >= seconds || wanted.len() >= EVENTS_MAX {
                    break;
                }
                let lasts = rng.gen_range(spec.lasts_seconds[0]..=spec.lasts_seconds[1]);
                // Never past the end of the phase: everything is healed when it ends.
                let lasts_ms = ((lasts.min(seconds - at)) * 1e3).max(1.0) as u64;
                wanted.push((secs_to_ms(at), lasts_ms, index, rng.gen::<u64>()));
            }
        }
        wanted.sort();
        let mut admitted: Vec<Event> = Vec::new();
        for (at_ms, lasts_ms, index, draw) in wanted {
            let busy = busy_elders(&admitted, at_ms, at_ms + lasts_ms, shape.elders);
            let mut rng = ChaCha20Rng::seed_from_u64(draw);
            if let Some(fault) = self.faults[index].draw(&mut rng, shape, &busy) {
                admitted.push(Event { at_ms, lasts_ms, fault });
            }
        }
        admitted
    }
}

fn secs_to_ms(seconds: f64) -> u64 {
    (seconds * 1e3) as u64
}

/// Elders some admitted event makes faulty at a time inside `[from, to)`.
fn busy_elders(admitted: &[Event], from: u64, to: u64, per_section: usize) -> BTreeSet<usize> {
    admitted
        .iter()
        .filter(|event| event.at_ms < to && from < event.end_ms())
        .flat_map(|event| event.fault.elders(per_section))
        .collect()
}

impl FaultSpec {
    fn check(&self) -> Result<(), String> {
        let [short, long] = self.lasts_seconds;
        if !(self.every_seconds >= EVERY_SECONDS_MIN && self.every_seconds.is_finite()) {
            return Err(format!("every_seconds must be at least {EVERY_SECONDS_MIN}"));
        }
        if !(LASTS_SECONDS_MIN <= short && short <= long && long <= LASTS_SECONDS_MAX) {
            return Err(format!(
                "lasts_seconds must be [shortest, longest] with {LASTS_SECONDS_MIN} <= shortest \
                 <= longest <= {LASTS_SECONDS_MAX}"
            ));
        }
        let [few, many] = self.elders;
        if !(1 <= few && few <= many) {
            return Err("elders must be [fewest, most] with 1 <= fewest <= most".to_string());
        }
        let [low, high] = self.percent;
        if self.kind == Kind::Loss && !(1 <= low && low <= high && high <= LOSS_PERCENT_MAX) {
            return Err(format!(
                "percent must be [lowest, highest] with 1 <= lowest <= highest <= \
                 {LOSS_PERCENT_MAX}"
            ));
        }
        Ok(())
    }

    /// One fault of this kind whose elders are not in `busy` and keep every section within
    /// `f` faulty; `None` if none fits now.
    fn draw(&self, rng: &mut ChaCha20Rng, shape: Shape, busy: &BTreeSet<usize>) -> Option<Fault> {
        let section = rng.gen_range(0..shape.sections);
        let members: Vec<usize> = (section * shape.elders..(section + 1) * shape.elders).collect();
        let busy_here = members.iter().filter(|elder| busy.contains(elder)).count();
        let free: Vec<usize> =
            members.iter().copied().filter(|elder| !busy.contains(elder)).collect();
        let room = shape.f().saturating_sub(busy_here);
        let pick = |rng: &mut ChaCha20Rng| -> Option<Vec<usize>> {
            let wanted = rng.gen_range(self.elders[0]..=self.elders[1]).min(room);
            (wanted > 0)
                .then(|| rand::seq::index::sample(rng, free.len(), wanted))
                .map(|chosen| chosen.iter().map(|k| free[k]).collect())
        };
        match self.kind {
            Kind::Crash => pick(rng).map(|elders| Fault::Crash { elders }),
            Kind::Pause => pick(rng).map(|elders| Fault::Pause { elders }),
            Kind::Partition => {
                pick(rng).map(|elders| Fault::Partition { elders, direction: self.direction })
            }
            Kind::SectionDown => (busy_here == 0).then_some(Fault::SectionDown { section }),
            Kind::Loss => Some(Fault::Loss {
                percent: rng.gen_range(self.percent[0]..=self.percent[1]),
                between: self.between,
            }),
            Kind::Byzantine => {
                let lies = if self.lies.is_empty() { Lie::ALL.to_vec() } else { self.lies.clone() };
                let lie = lies[rng.gen_range(0..lies.len())];
                let elder = (room > 0).then(|| free[rng.gen_range(0..free.len())])?;
                Some(Fault::Byzantine { elder, lie })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPES: [Shape; 3] = [
        Shape { sections: 2, elders: 4 },
        Shape { sections: 2, elders: 7 },
        Shape { sections: 4, elders: 1 },
    ];

    #[test]
    fn every_shipped_scenario_parses_and_draws_faults() {
        for (name, _) in SHIPPED {
            let scenario = Scenario::find(name).unwrap();
            let events = scenario.schedule(7, 120.0, SHAPES[0]);
            assert!(!events.is_empty(), "{name} draws no fault in 120 s");
        }
    }

    #[test]
    fn one_seed_gives_one_schedule_and_another_seed_another() {
        let mixed = Scenario::find("mixed").unwrap();
        let first = mixed.schedule(42, 60.0, SHAPES[1]);
        assert_eq!(first, mixed.schedule(42, 60.0, SHAPES[1]));
        assert_ne!(first, mixed.schedule(43, 60.0, SHAPES[1]));
    }

    #[test]
    fn no_section_ever_has_more_than_f_faulty_elders_except_when_it_is_down() {
        let mixed = Scenario::find("mixed").unwrap();
        for shape in SHAPES {
            for seed in 0..50 {
                let events = mixed.schedule(seed, 120.0, shape);
                for event in &events {
                    // Faulty elders are most at some event's start; check at every start.
                    let now: Vec<&Event> = events
                        .iter()
                        .filter(|other| other.at_ms <= event.at_ms && event.at_ms < other.end_ms())
                        .collect();
                    for section in 0..shape.sections {
                        let down = now.iter().any(|e| e.fault == Fault::SectionDown { section });
                        let members = section * shape.elders..(section + 1) * shape.elders;
                        let faulty: Vec<usize> = now
                            .iter()
                            .flat_map(|e| e.fault.elders(shape.elders))
                            .filter(|elder| members.contains(elder))
                            .collect();
                        let distinct: BTreeSet<&usize> = faulty.iter().collect();
                        assert_eq!(distinct.len(), faulty.len(), "an elder in two faults");
                        if down {
                            assert_eq!(faulty.len(), shape.elders, "section-down shares");
                        } else {
                            assert!(faulty.len() <= shape.f(), "seed {seed}: {faulty:?}");
                        }
                    }
                }
                assert!(events.iter().all(|event| event.end_ms() <= 120_000));
            }
        }
    }

    #[test]
    fn a_bad_scenario_says_what_is_wrong() {
        let bad = "description = \"x\"\n[[fault]]\nkind = \"loss\"\nevery_seconds = 1.0\n\
                   lasts_seconds = [1.0, 2.0]\npercent = [0, 30]\n";
        let error = Scenario::parse("bad", bad).unwrap_err().to_string();
        assert!(error.contains("percent must be"), "{error}");
        let unknown = Scenario::parse("bad", "description = \"x\"\nfault = []\nspeed = 3\n");
        assert!(unknown.unwrap_err().to_string().contains("speed"));
        assert!(matches!(Scenario::find("no-such"), Err(ScenarioError::Unknown(_))));
    }
}
