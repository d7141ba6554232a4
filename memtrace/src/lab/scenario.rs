//! The demo's scenarios in a memcg without swap: a hog that grows to four times its limit, with
//! the kernel's own OOM counters around it, and a steady leak. The workload and the sandbox go
//! on drop.
use std::{
    io::Write,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::report::oom::KernelOomCounts;
use crate::{
    error::Error,
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::vmstat,
};

/// A paused workload in a sandbox of its own (a memcg without swap). On drop the workload is
/// killed and reaped first, then the sandbox removed.
pub struct Paused {
    child: Child,
    sandbox: Sandbox,
}

impl Paused {
    /// Creates the sandbox (`limit_mib`, no swap) and starts `memtrace workload --wait ARGS`
    /// in it.
    fn start(limit_mib: u64, args: &[&str]) -> Result<Self, Error> {
        let limits = MemcgLimits {
            memory_bytes: limit_mib << 20,
            swap_bytes: Some(0),
        };
        let sandbox = Sandbox::create(&limits, None)?;
        let child = spawn_paused(args)?;
        // From here on, dropping `paused` kills the workload and removes the sandbox.
        let paused = Self { child, sandbox };
        paused.sandbox.memcg.add_pid(paused.child.id())?;
        Ok(paused)
    }

    /// The workload's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The sandbox memcg's directory.
    pub fn memcg(&self) -> PathBuf {
        self.sandbox.memcg.path().to_path_buf()
    }

    /// Lets the workload start.
    pub fn release(&mut self) -> Result<(), Error> {
        release(&mut self.child)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // The workload first: the sandbox's removal would kill it anyway, but not reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A paused hog in its sandbox, with the counters read before it starts.
pub struct OomScenario {
    pub workload: Paused,
    memcg_before: u64,
    machine_before: u64,
}

impl OomScenario {
    /// Creates the sandbox (`limit_mib`, no swap) and starts the hog in it, paused.
    pub fn start(limit_mib: u64) -> Result<Self, Error> {
        let hog_mib = (limit_mib * 4).to_string();
        let paused = Paused::start(
            limit_mib,
            &["oom-hog", "--step-mib", "16", "--mib", &hog_mib],
        )?;
        Ok(Self {
            memcg_before: paused.sandbox.memcg.oom_kills()?,
            machine_before: vmstat_oom_kills()?,
            workload: paused,
        })
    }

    /// The kernel's OOM kills since `start`: in the sandbox memcg and on the machine.
    pub fn kernel_counts(&self) -> Result<KernelOomCounts, Error> {
        Ok(KernelOomCounts {
            memcg: self.workload.memcg(),
            memcg_kills: self.workload.sandbox.memcg.oom_kills()? - self.memcg_before,
            machine_kills: vmstat_oom_kills()? - self.machine_before,
            expected_victim: self.workload.pid(),
        })
    }
}

fn vmstat_oom_kills() -> Result<u64, Error> {
    vmstat("oom_kill").map_err(|e| Error::io("reading /proc/vmstat", e))
}

/// Starts `memtrace workload --wait ARGS`, paused until [`release`].
fn spawn_paused(args: &[&str]) -> Result<Child, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating memtrace", e))?;
    Command::new(exe)
        .args(["workload", "--wait"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("starting the demo's workload", e))
}

/// Lets a paused workload start (it waits for a line on stdin).
pub fn release(child: &mut Child) -> Result<(), Error> {
    let stdin = child
        .stdin
        .as_mut()
        .ok_or_else(|| Error::io("workload stdin", std::io::ErrorKind::BrokenPipe.into()))?;
    stdin
        .write_all(b"go\n")
        .map_err(|e| Error::io("starting the workload", e))
}

/// A paused leak in its sandbox.
pub struct LeakScenario {
    pub workload: Paused,
}

impl LeakScenario {
    /// Creates the sandbox (`limit_mib`, no swap) and starts a leak of `kib_per_s` in it,
    /// paused.
    pub fn start(limit_mib: u64, kib_per_s: u64) -> Result<Self, Error> {
        let rate = kib_per_s.to_string();
        Ok(Self {
            workload: Paused::start(limit_mib, &["leak", "--kib-per-s", &rate])?,
        })
    }

    /// Waits up to `limit` for the leak to end; when it did, the moment it was seen gone
    /// (within 10 ms).
    pub fn wait_killed(&mut self, limit: Duration) -> Result<Option<Instant>, Error> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let exited = self
                .workload
                .child
                .try_wait()
                .map_err(|e| Error::io("waiting for the leak", e))?;
            if exited.is_some() {
                return Ok(Some(Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(None)
    }
}
