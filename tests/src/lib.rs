//! Helpers of the kernel integration tests: run the real `memtrace` binary and workloads with
//! known effects, and compare with the kernel's own counters. Everything a test starts is killed
//! on drop, so a failing assertion (a panic) still cleans up; sandboxes remove themselves.
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use memtrace::report::Report;

/// The memtrace binary under test (`cargo xtask test` sets `MEMTRACE_BIN`).
pub fn memtrace_bin() -> PathBuf {
    match std::env::var_os("MEMTRACE_BIN") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "MEMTRACE_BIN is not set: run the kernel tests with `cargo xtask test`, which builds \
             memtrace and points MEMTRACE_BIN at it"
        ),
    }
}

/// Fails loudly unless the tests can load eBPF programs.
pub fn require_root() {
    // SAFETY: geteuid has no failure mode.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the kernel tests need root; run `sudo cargo xtask test`, or set \
         MEMTRACE_SKIP_KERNEL_TESTS=1 to skip them explicitly"
    );
}

/// A built-in workload, started paused (`--wait`) so that a tracer can attach first.
pub struct Workload {
    child: Child,
    /// Its pid.
    pub pid: u32,
}

impl Workload {
    /// Starts `memtrace workload --wait ARGS`.
    pub fn spawn(args: &[&str]) -> Self {
        let child = Command::new(memtrace_bin())
            .args(["workload", "--wait"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the workload");
        Self {
            pid: child.id(),
            child,
        }
    }

    /// Lets it run.
    pub fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("workload stdin");
        stdin.write_all(b"go\n").expect("release the workload");
    }

    /// Waits for it to finish and decodes the counters it printed.
    pub fn finish<T: serde::de::DeserializeOwned>(mut self) -> T {
        let stdout = self.child.stdout.take().expect("workload stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the workload's output");
        let status = self.child.wait().expect("wait for the workload");
        assert!(status.success(), "workload failed: {status}");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("workload output {line:?}: {e}"))
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `memtrace record --quiet --json FILE ARGS`.
pub struct Recorder {
    child: Child,
    json: PathBuf,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Recorder {
    /// Starts memtrace and waits until its hooks are attached.
    pub fn start(args: &[&str]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let json = std::env::temp_dir().join(format!(
            "memtrace-test-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new(memtrace_bin())
            .args(["record", "--quiet", "--json"])
            .arg(&json)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn memtrace record");
        let stderr = child.stderr.take().expect("memtrace stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut recorder = Self {
            child,
            json,
            stderr: rx,
            stderr_seen: Vec::new(),
        };
        recorder.wait_for_line("memtrace: tracing", Duration::from_secs(30));
        recorder
    }

    /// The memtrace process's pid (to read its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_for_line(&mut self, prefix: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let found = line.starts_with(prefix);
                    self.stderr_seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "memtrace never printed {prefix:?}; stderr: {:#?}",
            self.stderr_seen
        );
    }

    /// Stops memtrace with SIGINT (as Ctrl-C would).
    pub fn interrupt(&self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }

    /// Waits for memtrace to end (by itself or after `interrupt`) and returns its JSON report.
    pub fn finish(self) -> Report {
        self.finish_with_stderr().0
    }

    /// As `finish`, and every line memtrace wrote on stderr.
    pub fn finish_with_stderr(mut self) -> (Report, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for memtrace") {
                break status;
            }
            assert!(Instant::now() < deadline, "memtrace did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        // Up to the end of the pipe: its last lines may still be on their way.
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.stderr_seen.push(line);
        }
        assert!(
            status.success(),
            "memtrace failed: {status}; stderr: {:#?}",
            self.stderr_seen
        );
        let text = std::fs::read_to_string(&self.json).expect("read the JSON report");
        let report = serde_json::from_str::<Report>(&text)
            .unwrap_or_else(|e| panic!("the JSON report does not parse as a Report: {e}"));
        (report, std::mem::take(&mut self.stderr_seen))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.json);
    }
}

/// Runs memtrace to completion, as `uid` when given.
pub fn run_memtrace(args: &[&str], uid: Option<u32>) -> Output {
    let mut cmd = Command::new(memtrace_bin());
    cmd.args(args).stdin(Stdio::null());
    if let Some(uid) = uid {
        // std drops the supplementary groups (root's) itself when a uid is set.
        cmd.uid(uid).gid(uid);
    }
    cmd.output().expect("run memtrace")
}

/// Reads one `/proc/vmstat` counter.
pub fn vmstat(key: &str) -> u64 {
    memtrace::lab::workload::vmstat(key).expect("read /proc/vmstat")
}

/// Asserts that `got` is within `percent` % of `want`.
pub fn assert_within(what: &str, got: u64, want: u64, percent: f64) {
    let diff = got.abs_diff(want) as f64;
    assert!(
        diff <= want as f64 * percent / 100.0,
        "{what}: memtrace counted {got}, the kernel {want} (more than {percent} % apart)"
    );
}

/// What memtrace or a test could leave behind: swap devices, sandbox cgroups, pinned BPF
/// objects. Compared before and after a test.
pub fn machine_state() -> Vec<String> {
    let mut state = Vec::new();
    if let Ok(swaps) = std::fs::read_to_string("/proc/swaps") {
        state.extend(
            swaps
                .lines()
                .skip(1)
                .map(|l| format!("swap {}", l.split_whitespace().next().unwrap_or(""))),
        );
    }
    for root in [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
    ] {
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("memtrace") {
                    state.push(format!("cgroup {root}/{name}"));
                }
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/sys/fs/bpf") {
        state.extend(
            entries
                .flatten()
                .map(|e| format!("bpffs {}", e.file_name().to_string_lossy())),
        );
    }
    state.sort();
    state
}

/// A directory of one test's files in the temp dir, removed on drop (also when an assertion
/// fails).
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `memtrace-<test>-<our pid>`, created.
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("memtrace-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// A file in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
