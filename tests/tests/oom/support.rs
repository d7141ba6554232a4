//! Helpers of the OOM tests: hogs whose progress can be followed, 48 MiB sandboxes without swap,
//! and the kernel's OOM counters and log lines to hold memtrace's reports against.
use std::{
    fs::File,
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
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

/// /dev/kmsg read from the moment it is opened: the kernel's own "Killed process PID" lines,
/// read here independently of memtrace's reader.
pub struct KernelLog(File);

impl KernelLog {
    /// Opens /dev/kmsg past the records already logged.
    pub fn open() -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        // SAFETY: plain lseek on our own fd; SEEK_END on /dev/kmsg skips the existing records.
        unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
        Self(file)
    }

    /// The pids of every "Killed process PID (comm) ..." line logged since the last call, in
    /// order.
    pub fn killed_pids(&mut self) -> Vec<u32> {
        let mut pids = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => pids.extend(killed_pid(&String::from_utf8_lossy(&buf[..n]))),
                // Records overwritten before we read them: carry on with the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading /dev/kmsg: {e}"),
            }
        }
        pids
    }
}

/// The pid of a `prio,seq,usec,flags;<message>: Killed process PID (comm) ...` record.
fn killed_pid(record: &str) -> Option<u32> {
    let (_, message) = record.split_once(';')?;
    let rest = &message[message.find("Killed process ")? + "Killed process ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}
