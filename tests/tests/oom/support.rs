//! Helpers of the OOM tests: hogs whose progress can be followed, 48 MiB sandboxes without swap,
//! and the kernel's OOM counters to hold memtrace's reports against.
use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use memtrace::{
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::oom::HogProgress,
    report::Report,
};
use memtrace_tests::{memtrace_bin, vmstat};

pub const MIB: u64 = 1 << 20;
pub const LIMIT_PAGES: u64 = 48 * MIB / 4096;

/// `memtrace workload --wait oom-hog ARGS`, its progress lines on a channel; killed on drop.
pub struct Hog {
    child: Child,
    pub pid: u32,
    progress: mpsc::Receiver<HogProgress>,
}

impl Hog {
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(memtrace_bin())
            .args(["workload", "--wait", "oom-hog"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the hog");
        let stdout = child.stdout.take().expect("hog stdout");
        let (tx, progress) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).expect("a progress line"));
            }
        });
        Self {
            pid: child.id(),
            child,
            progress,
        }
    }

    pub fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("hog stdin");
        stdin.write_all(b"go\n").expect("release the hog");
    }

    /// Waits until the hog holds all it was asked to (true), or has died (false).
    pub fn wait_done_or_dead(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.progress.recv_timeout(left) {
                Ok(progress) if progress.done => return true,
                Ok(_) => {}
                // Its stdout closed: it exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait_killed();
                    eprintln!("hog {} died before holding all: {status}", self.pid);
                    return false;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("hog {} neither grew nor died", self.pid)
                }
            }
        }
    }

    /// Waits until the hog holds all it was asked to.
    pub fn wait_done(&mut self) {
        assert!(
            self.wait_done_or_dead(),
            "hog {} died while growing",
            self.pid
        );
    }

    /// Waits for the hog to die.
    pub fn wait_killed(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the hog") {
                return status;
            }
            assert!(Instant::now() < deadline, "the hog was never killed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memcg of 48 MiB without swap, as the tests want it.
pub fn sandbox() -> Sandbox {
    let limits = MemcgLimits {
        memory_bytes: 48 * MIB,
        swap_bytes: Some(0),
    };
    Sandbox::create(&limits, None).expect("sandbox")
}

fn kills_in(report: &Report, sandbox: &Sandbox) -> u64 {
    let path = sandbox.memcg.path().to_str().expect("utf-8 path");
    report
        .oom_kills
        .iter()
        .filter(|k| k.domain.cgroup.as_deref().and_then(Path::to_str) == Some(path))
        .count() as u64
}

/// The kernel's OOM counters before a test, to compare with the kills memtrace reports.
pub struct KernelCounts {
    memcg: u64,
    machine: u64,
}

impl KernelCounts {
    pub fn read(sandbox: &Sandbox) -> Self {
        Self {
            memcg: sandbox.memcg.oom_kills().expect("memory.oom_control"),
            machine: vmstat("oom_kill"),
        }
    }

    /// memory.oom_control's and /proc/vmstat's oom_kill went up by exactly what memtrace saw.
    pub fn assert_match(&self, report: &Report, sandbox: &Sandbox) {
        let now = Self::read(sandbox);
        let (memcg, machine) = (now.memcg - self.memcg, now.machine - self.machine);
        eprintln!("kernel: {memcg} kill(s) in the memcg, {machine} on the machine");
        assert_eq!(
            kills_in(report, sandbox),
            memcg,
            "memory.oom_control oom_kill"
        );
        assert_eq!(
            report.oom_kills.len() as u64,
            machine,
            "/proc/vmstat oom_kill"
        );
    }
}
