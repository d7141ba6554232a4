//! The demo's OOM scenario: a hog in a memcg without swap that grows to four times its limit,
//! and the kernel's own OOM counters around it. The hog and the sandbox go on drop.
use std::{
    io::Write,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use crate::report::oom::KernelOomCounts;
use crate::{
    error::Error,
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::vmstat,
};

/// A paused hog in its sandbox, with the counters read before it starts.
pub struct OomScenario {
    child: Child,
    sandbox: Sandbox,
    memcg_before: u64,
    machine_before: u64,
}

impl OomScenario {
    /// Creates the sandbox (`limit_mib`, no swap) and starts the hog in it, paused.
    pub fn start(limit_mib: u64) -> Result<Self, Error> {
        let limits = MemcgLimits {
            memory_bytes: limit_mib << 20,
            swap_bytes: Some(0),
        };
        let sandbox = Sandbox::create(&limits, None)?;
        let exe = std::env::current_exe().map_err(|e| Error::io("locating memtrace", e))?;
        let hog_mib = (limit_mib * 4).to_string();
        let child = Command::new(exe)
            .args(["workload", "--wait", "oom-hog", "--step-mib", "16"])
            .args(["--mib", &hog_mib])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("starting the OOM hog", e))?;
        // From here on, dropping `scenario` kills the hog and removes the sandbox.
        let mut scenario = Self {
            child,
            sandbox,
            memcg_before: 0,
            machine_before: 0,
        };
        scenario.sandbox.memcg.add_pid(scenario.pid())?;
        scenario.memcg_before = scenario.sandbox.memcg.oom_kills()?;
        scenario.machine_before = vmstat_oom_kills()?;
        Ok(scenario)
    }

    /// The hog's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The sandbox memcg's directory.
    pub fn memcg(&self) -> PathBuf {
        self.sandbox.memcg.path().to_path_buf()
    }

    /// Lets the hog grow.
    pub fn release(&mut self) -> Result<(), Error> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| Error::io("hog stdin", std::io::ErrorKind::BrokenPipe.into()))?;
        stdin
            .write_all(b"go\n")
            .map_err(|e| Error::io("starting the hog", e))
    }

    /// The kernel's OOM kills since `start`: in the sandbox memcg and on the machine.
    pub fn kernel_counts(&self) -> Result<KernelOomCounts, Error> {
        Ok(KernelOomCounts {
            memcg: self.memcg(),
            memcg_kills: self.sandbox.memcg.oom_kills()? - self.memcg_before,
            machine_kills: vmstat_oom_kills()? - self.machine_before,
            expected_victim: self.pid(),
        })
    }
}

impl Drop for OomScenario {
    fn drop(&mut self) {
        // The hog first: the sandbox's removal would kill it anyway, but not reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vmstat_oom_kills() -> Result<u64, Error> {
    vmstat("oom_kill").map_err(|e| Error::io("reading /proc/vmstat", e))
}
