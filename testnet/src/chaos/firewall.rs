//! Network faults on the elders' real UDP traffic, with nftables on the loopback interface.
//! Every elder sends and receives on its one QUIC port (its outgoing connections use the same
//! endpoint), so a rule on source and destination ports cuts exactly the traffic between two
//! elders, and a rule on the elder ports against every other port touches only client
//! traffic. All rules live in one table of this testnet's own (`sectionbank_<first port>`),
//! rewritten as a whole in one nft transaction whenever the set of faults changes, and
//! deleted when the run ends; a later run or `testnet down` deletes what a crashed run left.
//! Each rule counts what it drops, so the verdict says how many packets the faults took.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::chaos::scenario::{Between, Direction};
use crate::genesis::Genesis;

/// Why the firewall cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// nft is not installed.
    #[error(
        "network faults need nftables, and `nft` is not installed: install it with \
         `apt-get install nftables` (Debian, Ubuntu) or `dnf install nftables`"
    )]
    Missing,
    /// nft refused.
    #[error("nft failed: {0} (network faults need root, or CAP_NET_ADMIN)")]
    Refused(String),
}

/// One network fault as rules.
#[derive(Clone, Debug)]
pub enum Cut {
    /// These elder ports cut off from the other elder ports.
    Partition {
        /// The group's ports.
        group: Vec<u16>,
        /// Which way.
        direction: Direction,
    },
    /// A share of packets dropped.
    Loss {
        /// Percent.
        percent: u32,
        /// Whose.
        between: Between,
    },
}

/// The chaos table of one testnet.
pub struct Firewall {
    table: String,
    ports: Vec<u16>,
    cuts: BTreeMap<u64, Cut>,
    /// Packets dropped so far by kind ("partition", "loss").
    dropped: BTreeMap<&'static str, u64>,
    /// Table rewrites and their total time, in ms.
    updates: (u64, f64),
}

/// The name of a testnet's chaos table.
pub fn table_name(genesis: &Genesis) -> String {
    let first = genesis.elders.iter().map(|elder| elder.listen.port()).min().unwrap_or(0);
    format!("sectionbank_{first}")
}

/// Deletes a testnet's chaos table if one is left; true if there was one.
pub fn clear_left_over(genesis: &Genesis) -> bool {
    nft(&format!("delete table inet {}\n", table_name(genesis))).is_ok()
}

fn nft(script: &str) -> Result<String, FirewallError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| FirewallError::Missing)?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|error| FirewallError::Refused(error.to_string()))?;
    let out =
        child.wait_with_output().map_err(|error| FirewallError::Refused(error.to_string()))?;
    if !out.status.success() {
        return Err(FirewallError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

fn set(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!("{{ {} }}", list.join(", "))
}

impl Firewall {
    /// The firewall of `genesis`'s elders, with no fault yet; fails at once if nft is missing
    /// or may not be used, so a run finds out before it starts.
    pub fn new(genesis: &Genesis) -> Result<Firewall, FirewallError> {
        let ports = genesis.elders.iter().map(|elder| elder.listen.port()).collect();
        let mut firewall = Firewall {
            table: table_name(genesis),
            ports,
            cuts: BTreeMap::new(),
            dropped: BTreeMap::new(),
            updates: (0, 0.0),
        };
        clear_left_over(genesis);
        firewall.rewrite()?;
        Ok(firewall)
    }

    /// Adds fault `id`.
    pub fn add(&mut self, id: u64, cut: Cut) -> Result<(), FirewallError> {
        self.cuts.insert(id, cut);
        let rewritten = self.rewrite();
        if rewritten.is_err() {
            self.cuts.remove(&id);
        }
        rewritten
    }

    /// Heals fault `id`.
    pub fn remove(&mut self, id: u64) -> Result<(), FirewallError> {
        self.cuts.remove(&id);
        self.rewrite()
    }

    /// Packets dropped so far, by kind.
    pub fn dropped(&self) -> BTreeMap<&'static str, u64> {
        let mut all = self.dropped.clone();
        for (kind, packets) in self.counters() {
            *all.entry(kind).or_default() += packets;
        }
        all
    }

    /// Mean time of one table rewrite, in ms.
    pub fn mean_update_ms(&self) -> f64 {
        self.updates.1 / self.updates.0.max(1) as f64
    }

    /// Removes every rule and the table.
    pub fn clear(&mut self) {
        self.dropped = self.dropped();
        self.cuts.clear();
        let _ = nft(&format!("delete table inet {}\n", self.table));
    }

    /// What the current rules dropped, by kind (a rewrite starts them at zero).
    fn counters(&self) -> BTreeMap<&'static str, u64> {
        let mut counted = BTreeMap::new();
        let listing = nft(&format!("list table inet {}\n", self.table)).unwrap_or_default();
        for line in listing.lines() {
            let Some(kind) = ["partition", "loss"]
                .into_iter()
                .find(|kind| line.contains(&format!("\"{kind}\"")))
            else {
                continue;
            };
            let packets = line
                .split_whitespace()
                .skip_while(|word| *word != "packets")
                .nth(1)
                .and_then(|number| number.parse::<u64>().ok())
                .unwrap_or(0);
            *counted.entry(kind).or_default() += packets;
        }
        counted
    }

    fn rules(&self) -> Vec<String> {
        let mut rules = Vec::new();
        let all = set(&self.ports);
        for cut in self.cuts.values() {
            match cut {
                Cut::Partition { group, direction } => {
                    let others: Vec<u16> =
                        self.ports.iter().copied().filter(|port| !group.contains(port)).collect();
                    let (group, others) = (set(group), set(&others));
                    let rule = |from: &str, to: &str| {
                        format!(
                            "udp sport {from} udp dport {to} counter drop comment \"partition\""
                        )
                    };
                    if *direction != Direction::Inbound {
                        rules.push(rule(&group, &others));
                    }
                    if *direction != Direction::Outbound {
                        rules.push(rule(&others, &group));
                    }
                }
                Cut::Loss { percent, between } => {
                    let lose =
                        format!("numgen random mod 100 < {percent} counter drop comment \"loss\"");
                    match between {
                        Between::Elders => {
                            rules.push(format!("udp sport {all} udp dport {all} {lose}"));
                        }
                        Between::Clients => {
                            rules.push(format!("udp sport != {all} udp dport {all} {lose}"));
                            rules.push(format!("udp sport {all} udp dport != {all} {lose}"));
                        }
                    }
                }
            }
        }
        rules
    }

    fn rewrite(&mut self) -> Result<(), FirewallError> {
        self.dropped = self.dropped();
        let started = Instant::now();
        let rules: String =
            self.rules().iter().map(|rule| format!("    iif \"lo\" {rule}\n")).collect();
        let table = &self.table;
        nft(&format!(
            "table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n  \
             chain input {{\n    type filter hook input priority filter; policy accept;\n\
             {rules}  }}\n}}\n"
        ))?;
        self.updates.0 += 1;
        self.updates.1 += started.elapsed().as_secs_f64() * 1e3;
        Ok(())
    }
}

impl Drop for Firewall {
    /// No rule outlives the run, whichever way it ends.
    fn drop(&mut self) {
        self.clear();
    }
}
