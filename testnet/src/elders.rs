//! Elder processes of a local network: spawned from the `elder` binary beside this one, each
//! logging to `elder.log` in its directory and leaving its pid in `elder.pid`, so that a
//! detached network can be found, checked and stopped later.

use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::genesis::{ElderFiles, Genesis};
use crate::limits::{EXIT_POLL_MS, STOP_PATIENCE};

/// Why elders cannot be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ElderError {
    /// A binary is not where it should be.
    #[error(
        "{} is missing; build it with `cargo build --release --bins` and run testnet from \
         the same target directory", .0.display()
    )]
    MissingBinary(PathBuf),
    /// An elder's port is taken.
    #[error(
        "port {port} for elder {elder} is in use: is another testnet running? Stop it with \
         `testnet down --dir DIR`, or choose other ports with --base-port"
    )]
    PortInUse {
        /// The elder, as `section/index`.
        elder: String,
        /// The port.
        port: u16,
    },
    /// A process operation failed.
    #[error("elder {elder}: {problem}")]
    Process {
        /// The elder, as `section/index`.
        elder: String,
        /// What went wrong.
        problem: String,
    },
}

/// The `elder` binary next to the running executable (or one directory up, for test binaries
/// in `target/<profile>/deps`).
pub fn elder_binary() -> Result<PathBuf, ElderError> {
    binary_beside("elder")
}

/// The binary `name` next to the running executable, or one directory up.
pub fn binary_beside(name: &str) -> Result<PathBuf, ElderError> {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [dir.join(name), dir.parent().unwrap_or(dir).join(name)];
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| ElderError::MissingBinary(candidates[0].clone()))
}

/// The first of `count` consecutive free UDP ports on 127.0.0.1 at or after `from`.
pub fn free_base_port(from: u16, count: usize) -> Option<u16> {
    let count = u16::try_from(count).ok()?;
    let mut base = from;
    while base.checked_add(count).is_some() {
        let taken = (0..count).position(|k| UdpSocket::bind(("127.0.0.1", base + k)).is_err());
        match taken {
            None => return Some(base),
            Some(k) => base += k as u16 + 1,
        }
    }
    None
}

/// A POSIX signal sent to an elder.
#[derive(Clone, Copy, Debug)]
pub enum Signal {
    /// Stop cleanly.
    Terminate,
    /// Pause.
    Stop,
    /// Resume after a pause.
    Continue,
    /// Die at once.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "TERM",
            Signal::Stop => "STOP",
            Signal::Continue => "CONT",
            Signal::Kill => "KILL",
        }
    }
}

/// Sends `signal` to process `pid`; false if there is no such process.
pub fn send_signal(pid: u32, signal: Signal) -> bool {
    Command::new("kill")
        .arg(format!("-{}", signal.name()))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether `pid` is a live `elder` process (not another process that reused the pid).
pub fn is_elder_process(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    !zombie && cmdline.split(|byte| *byte == 0).next().is_some_and(|exe| exe.ends_with(b"elder"))
}

/// User plus system CPU seconds a process has used (from /proc; 0 if unreadable).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // After the command come state (field 3) …; utime and stime are fields 14 and 15.
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

/// The kernel's clock ticks per second, as `getconf CLK_TCK` reports it (100 if unknown),
/// asked once: CPU is sampled inside the windows it measures.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A process's resident memory in bytes (VmRSS from /proc; 0 if unreadable).
pub fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status.lines().find_map(|line| {
        line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
    });
    kib.unwrap_or(0) * 1024
}

/// An elder's name for messages: `section/index`.
pub fn elder_name(elder: &ElderFiles) -> String {
    format!("{}/{}", elder.prefix, elder.index)
}

/// Where an elder started here logs.
pub fn log_file(elder: &ElderFiles) -> PathBuf {
    elder.config.with_file_name("elder.log")
}

fn pid_file(elder: &ElderFiles) -> PathBuf {
    elder.config.with_file_name("elder.pid")
}

/// The pid an elder's pid file names, if the file is there.
pub fn recorded_pid(elder: &ElderFiles) -> Option<u32> {
    std::fs::read_to_string(pid_file(elder)).ok()?.trim().parse().ok()
}

/// The elder processes of one network.
pub struct Elders {
    genesis: Genesis,
    binary: PathBuf,
    children: Vec<Option<Child>>,
    detached: bool,
}

impl Elders {
    /// Elders of `genesis`, none running yet; detached ones survive this process.
    pub fn new(genesis: Genesis, detached: bool) -> Result<Elders, ElderError> {
        let binary = elder_binary()?;
        let children = genesis.elders.iter().map(|_| None).collect();
        Ok(Elders { genesis, binary, children, detached })
    }

    /// The network's files.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Checks that every elder's port is free.
    pub fn check_ports(&self) -> Result<(), ElderError> {
        for elder in &self.genesis.elders {
            if UdpSocket::bind(elder.listen).is_err() {
                return Err(ElderError::PortInUse {
                    elder: elder_name(elder),
                    port: elder.listen.port(),
                });
            }
        }
        Ok(())
    }

    /// Starts every elder.
    pub fn spawn_all(&mut self) -> Result<(), ElderError> {
        (0..self.children.len()).try_for_each(|position| self.spawn(position))
    }

    /// Starts (or restarts) the elder at `position`.
    pub fn spawn(&mut self, position: usize) -> Result<(), ElderError> {
        let binary = self.binary.clone();
        self.spawn_with(position, &binary, &[])
    }

    /// Starts the elder at `position` from `binary` (an elder build) with extra arguments.
    pub fn spawn_with(
        &mut self,
        position: usize,
        binary: &Path,
        args: &[String],
    ) -> Result<(), ElderError> {
        let elder = &self.genesis.elders[position];
        let fail = |problem: String| ElderError::Process { elder: elder_name(elder), problem };
        let log_path = log_file(elder);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|error| fail(format!("{}: {error}", log_path.display())))?;
        let log_too = log.try_clone().map_err(|error| fail(error.to_string()))?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(&elder.config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_too)
            .stderr(log);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        // Its own process group: Ctrl-C in this terminal reaches only this tool, which stops
        // its elders itself (or, when detached, leaves them running).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(|error| fail(format!("cannot start: {error}")))?;
        std::fs::write(pid_file(elder), format!("{}\n", child.id()))
            .map_err(|error| fail(format!("cannot write its pid file: {error}")))?;
        self.children[position] = Some(child);
        Ok(())
    }

    /// The pid of the elder at `position`, if this process started it and it still runs.
    pub fn pid(&self, position: usize) -> Option<u32> {
        self.children[position].as_ref().map(Child::id)
    }

    /// Sends a signal to the elder at `position`; a killed elder is reaped at once.
    pub fn signal(&mut self, position: usize, signal: Signal) {
        if let Some(pid) = self.pid(position) {
            send_signal(pid, signal);
        }
        if let Signal::Kill = signal {
            if let Some(mut child) = self.children[position].take() {
                let _ = child.wait();
            }
        }
    }

    /// How the elder at `position` ended, if it was running and has exited on its own.
    pub fn exited(&mut self, position: usize) -> Option<std::process::ExitStatus> {
        let status = self.children[position].as_mut()?.try_wait().ok()??;
        self.children[position] = None;
        Some(status)
    }

    /// Waits up to `patience` for the elder at `position` to exit; returns its exit code, or
    /// `None` if it is still running (or died by a signal).
    pub fn wait_exit(&mut self, position: usize, patience: Duration) -> Option<i32> {
        let deadline = Instant::now() + patience;
        let child = self.children[position].as_mut()?;
        loop {
            if let Some(status) = child.try_wait().ok()? {
                self.children[position] = None;
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(EXIT_POLL_MS));
        }
    }

    /// Asks every running elder to stop cleanly and waits; returns the elders that did not
    /// exit with code 0 (killed after `STOP_PATIENCE`).
    pub fn stop_all(&mut self) -> Vec<String> {
        for position in 0..self.children.len() {
            if let Some(pid) = self.pid(position) {
                send_signal(pid, Signal::Continue);
                send_signal(pid, Signal::Terminate);
            }
        }
        let deadline = Instant::now() + STOP_PATIENCE;
        let mut unclean = Vec::new();
        for position in 0..self.children.len() {
            if self.children[position].is_none() {
                continue;
            }
            let name = elder_name(&self.genesis.elders[position]);
            let code = self.wait_exit(position, deadline.saturating_duration_since(Instant::now()));
            if let Some(mut child) = self.children[position].take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_file(pid_file(&self.genesis.elders[position]));
            if code != Some(0) {
                unclean.push(name);
            }
        }
        unclean
    }
}

impl Drop for Elders {
    /// Attached elders never outlive their manager, even when it panics.
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        for child in self.children.iter_mut().flatten() {
            send_signal(child.id(), Signal::Continue);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Stops a detached network's elders by their pid files; returns how many were running.
pub fn stop_detached(genesis: &Genesis) -> usize {
    let mut running = Vec::new();
    for elder in &genesis.elders {
        if let Some(pid) = recorded_pid(elder).filter(|pid| is_elder_process(*pid)) {
            send_signal(pid, Signal::Terminate);
            running.push(pid);
        }
    }
    let deadline = Instant::now() + STOP_PATIENCE;
    while running.iter().any(|pid| is_elder_process(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in &running {
        if is_elder_process(*pid) {
            send_signal(*pid, Signal::Kill);
        }
    }
    for elder in &genesis.elders {
        let _ = std::fs::remove_file(pid_file(elder));
    }
    running.len()
}
