//! Helpers of the kernel integration tests: run the real `memtrace` binary and workloads with
//! known effects, and compare with the kernel's own counters. Everything a test starts is killed
//! on drop, so a failing assertion (a panic) still cleans up; sandboxes remove themselves.
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{
        Arc, LazyLock, Mutex, Weak,
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use memtrace::{
    lab::{bench::tracefs::Tracefs, selfcheck::SelfCheck},
    model::diff::Diff,
    report::Report,
};

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
    restore_leftover_sysctls();
}

/// One of the JSON Schemas in docs/, compiled on first use (which checks it against draft
/// 2020-12's meta-schema).
struct Schema {
    /// Its path in the repository, for the failure messages.
    path: &'static str,
    /// What the documents it describes are, in words.
    what: &'static str,
    validator: LazyLock<jsonschema::Validator>,
}

fn compile(path: &str, text: &str) -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("{path} is not a valid schema: {e}"))
}

/// `memtrace.report/1`: `record`, `demo` and `report --json`.
static REPORT_SCHEMA: Schema = Schema {
    path: "docs/report.schema.json",
    what: "JSON report",
    validator: LazyLock::new(|| {
        compile(
            "docs/report.schema.json",
            include_str!("../../docs/report.schema.json"),
        )
    }),
};

/// `memtrace.diff/1`: `diff --json`.
static DIFF_SCHEMA: Schema = Schema {
    path: "docs/diff.schema.json",
    what: "JSON of `memtrace diff`",
    validator: LazyLock::new(|| {
        compile(
            "docs/diff.schema.json",
            include_str!("../../docs/diff.schema.json"),
        )
    }),
};

/// `memtrace.selfcheck/1`: `selfcheck --json`.
static SELFCHECK_SCHEMA: Schema = Schema {
    path: "docs/selfcheck.schema.json",
    what: "JSON of `memtrace selfcheck`",
    validator: LazyLock::new(|| {
        compile(
            "docs/selfcheck.schema.json",
            include_str!("../../docs/selfcheck.schema.json"),
        )
    }),
};

/// Schema errors listed in a failure message (each one cut to a line's length).
const SHOWN_ERRORS: usize = 20;

/// A JSON document as a test reads it: first held to `schema`, every field and type as
/// documented and nothing else, then decoded. Fails with the validator's messages.
fn parse_validated<T: serde::de::DeserializeOwned>(schema: &Schema, text: &str) -> T {
    let what = schema.what;
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("the {what} is not JSON: {e}"));
    let errors: Vec<String> = schema
        .validator
        .iter_errors(&value)
        .map(|e| {
            format!("{}: {e}", e.instance_path())
                .chars()
                .take(300)
                .collect()
        })
        .collect();
    assert!(
        errors.is_empty(),
        "the {what} breaks {} in {} places:\n{}{}",
        schema.path,
        errors.len(),
        errors[..errors.len().min(SHOWN_ERRORS)].join("\n"),
        if errors.len() > SHOWN_ERRORS {
            "\n..."
        } else {
            ""
        }
    );
    serde_json::from_value(value).unwrap_or_else(|e| {
        panic!(
            "the {what} does not parse as a {}: {e}",
            std::any::type_name::<T>()
        )
    })
}

/// A JSON report, held to docs/report.schema.json and decoded.
pub fn parse_report(text: &str) -> Report {
    parse_validated(&REPORT_SCHEMA, text)
}

/// The JSON of `memtrace diff`, held to docs/diff.schema.json and decoded.
pub fn parse_diff(text: &str) -> Diff {
    parse_validated(&DIFF_SCHEMA, text)
}

/// The JSON of `memtrace selfcheck`, held to docs/selfcheck.schema.json and decoded.
pub fn parse_selfcheck(text: &str) -> SelfCheck {
    parse_validated(&SELFCHECK_SCHEMA, text)
}

/// The stderr of a child, line by line, read by a thread so that a test can wait for a line
/// with a timeout; every line read is kept for failure messages.
pub struct StderrLines {
    rx: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl StderrLines {
    /// Takes `child`'s piped stderr and follows it.
    pub fn follow(child: &mut Child) -> Self {
        let stderr = child.stderr.take().expect("a piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits until a line starts with `prefix`; panics, naming `who`, after `timeout`.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration, who: &str) {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let found = line.starts_with(prefix);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("{who} never printed {prefix:?}; stderr: {:#?}", self.seen);
    }

    /// Reads what is left (the child has ended; its last lines may still be on their way)
    /// and returns every line.
    pub fn rest(&mut self, quiet_for: Duration) -> Vec<String> {
        while let Ok(line) = self.rx.recv_timeout(quiet_for) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

/// Waits up to `limit` for `child` to end.
pub fn wait_child(child: &mut Child, limit: Duration, who: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        assert!(Instant::now() < deadline, "{who} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
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

    /// Waits until it prints `text` as a line of its own (a workload that holds its state
    /// until told to stop says "ready"); only for workloads that print nothing else.
    pub fn wait_for_line(&mut self, text: &str) {
        let stdout = self.child.stdout.take().expect("workload stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the workload's output");
        assert_eq!(line.trim_end(), text, "the workload said something else");
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

/// Waits until a recorder started with `-o PATH` has written its header (it is tracing from
/// then on).
pub fn wait_for_recording_header(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(path).map_or(0, |m| m.len()) <= 16 {
        assert!(
            Instant::now() < deadline,
            "the recorder never wrote its header"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `memtrace record --quiet --json FILE ARGS`.
pub struct Recorder {
    child: Child,
    json: PathBuf,
    stderr: StderrLines,
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
        let mut recorder = Self {
            stderr: StderrLines::follow(&mut child),
            child,
            json,
        };
        recorder.wait_for_line("memtrace: tracing", Duration::from_secs(30));
        recorder
    }

    /// The memtrace process's pid (to read its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_for_line(&mut self, prefix: &str, timeout: Duration) {
        self.stderr.wait_for(prefix, timeout, "memtrace");
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
        let status = wait_child(&mut self.child, Duration::from_secs(180), "memtrace");
        let lines = self.stderr.rest(Duration::from_secs(5));
        assert!(
            status.success(),
            "memtrace failed: {status}; stderr: {lines:#?}"
        );
        let text = std::fs::read_to_string(&self.json).expect("read the JSON report");
        (parse_report(&text), lines)
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

    /// The same under /var/tmp: on a disk, where a file's pages go to the page cache (the temp
    /// dir may be a tmpfs).
    pub fn on_disk(test: &str) -> Self {
        let dir = PathBuf::from(format!("/var/tmp/memtrace-{test}-{}", std::process::id()));
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

/// One tracepoint counted by a tracefs instance of its own (the kernel's own count, beside
/// memtrace's): created enabled, disabled and removed on drop. tracefs is mounted for it when
/// the machine has not mounted it, and unmounted when the last count is dropped.
pub struct TraceCount {
    dir: PathBuf,
    event: String,
    /// Dropped after `drop` removed the instance, so an unmount finds it gone.
    _tracefs: Arc<Tracefs>,
}

/// The tracefs mount the live counts share.
fn shared_tracefs() -> Arc<Tracefs> {
    static SHARED: Mutex<Weak<Tracefs>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tracefs) = shared.upgrade() {
        return tracefs;
    }
    let tracefs = Arc::new(Tracefs::ensure().unwrap_or_else(|e| panic!("tracefs: {e}")));
    *shared = Arc::downgrade(&tracefs);
    tracefs
}

impl TraceCount {
    /// Starts counting `event` (`kmem/mm_page_alloc_extfrag`).
    pub fn start(event: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tracefs = shared_tracefs();
        let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.join("instances").is_dir())
            .expect("tracefs is not mounted (/sys/kernel/tracing)");
        let dir = root.join("instances").join(format!(
            "memtrace-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).expect("create a tracefs instance");
        let count = Self {
            dir,
            event: event.to_string(),
            _tracefs: tracefs,
        };
        count.enable("1");
        count
    }

    fn enable(&self, value: &str) {
        let path = self.dir.join("events").join(&self.event).join("enable");
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Stops counting and returns how many events the kernel wrote: the entries in the
    /// buffer and those overwritten, summed over the CPUs.
    pub fn stop(&self) -> u64 {
        self.enable("0");
        let cpus = std::fs::read_dir(self.dir.join("per_cpu")).expect("per_cpu");
        let mut total = 0;
        for cpu in cpus.flatten() {
            let stats = std::fs::read_to_string(cpu.path().join("stats")).expect("stats");
            for line in stats.lines() {
                if let Some(n) =
                    (line.strip_prefix("entries:")).or_else(|| line.strip_prefix("overrun:"))
                {
                    total += n.trim().parse::<u64>().expect("a count");
                }
            }
        }
        total
    }
}

impl Drop for TraceCount {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.dir.join("events").join(&self.event).join("enable"),
            "0",
        );
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where a test that changes a sysctl leaves the original value until it restores it: a test
/// killed with SIGKILL cannot restore, so the next kernel test does (`require_root`).
const SYSCTL_STASH: &str = "/run/memtrace-tests";

/// A sysctl set for one test and restored on drop (also when an assertion fails), or by the
/// next kernel test if this one is killed.
pub struct Sysctl {
    path: &'static str,
    original: String,
    stash: PathBuf,
}

impl Sysctl {
    /// Sets `path` (`/proc/sys/vm/...`) to `value`, remembering what it was.
    pub fn set(path: &'static str, value: &str) -> Self {
        let original = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        std::fs::create_dir_all(SYSCTL_STASH).expect("the sysctl stash");
        let stash =
            PathBuf::from(SYSCTL_STASH).join(path.trim_start_matches('/').replace('/', "+"));
        std::fs::write(
            &stash,
            format!("{}\n{}", std::process::id(), original.trim()),
        )
        .expect("stash the sysctl");
        let sysctl = Self {
            path,
            original,
            stash,
        };
        std::fs::write(path, value).unwrap_or_else(|e| panic!("set {path} to {value}: {e}"));
        sysctl
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, self.original.trim());
        let _ = std::fs::remove_file(&self.stash);
    }
}

/// Restores the sysctls a killed test left changed (their test process is gone).
fn restore_leftover_sysctls() {
    let Ok(entries) = std::fs::read_dir(SYSCTL_STASH) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Some((pid, original)) = text.split_once('\n') else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().replace('+', "/");
        let path = format!("/{name}");
        if path.starts_with("/proc/sys/") {
            eprintln!("restoring {path} to {original}, left by a killed test (pid {pid})");
            let _ = std::fs::write(&path, original);
        }
        let _ = std::fs::remove_file(entry.path());
    }
}

/// Reads one `/proc/meminfo` field, in kB.
pub fn meminfo_kb(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    memtrace::collect::procfs::meminfo_kb(&text, key).unwrap_or_else(|| panic!("no {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stash left by a process that is gone is restored and removed; one of a live process
    /// is left alone. (The value written back is the current one: nothing changes.)
    #[test]
    fn a_killed_tests_sysctl_is_restored_by_the_next() {
        require_root();
        let path = "/proc/sys/vm/watermark_scale_factor";
        let now = std::fs::read_to_string(path).expect("read");
        std::fs::create_dir_all(SYSCTL_STASH).expect("stash dir");
        let dead = PathBuf::from(SYSCTL_STASH).join("proc+sys+vm+watermark_scale_factor");
        // pid_max is at most 4 194 304: this pid cannot be alive.
        std::fs::write(&dead, format!("99999999\n{}", now.trim())).expect("stash");
        let live = PathBuf::from(SYSCTL_STASH).join("proc+sys+vm+swappiness");
        let swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").expect("read");
        std::fs::write(
            &live,
            format!("{}\n{}", std::process::id(), swappiness.trim()),
        )
        .expect("stash");
        restore_leftover_sysctls();
        assert!(!dead.exists(), "the dead test's stash was not restored");
        assert!(live.exists(), "a live test's stash was taken");
        std::fs::remove_file(&live).expect("clean up");
        assert_eq!(std::fs::read_to_string(path).expect("read"), now);
    }
}
