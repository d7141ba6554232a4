//! Fault tracing against the kernel's own counters, in a sandbox (memcg + temporary swap).
use memtrace::{
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::faults::FaultOutcome,
    samples::StopReason,
};
use memtrace_tests::{Recorder, Workload, assert_within, require_root, vmstat};

const MIB: u64 = 1 << 20;

/// File major faults, anonymous minor faults and swap-ins of one process, traced by `--pid`:
/// memtrace agrees with /proc/PID/stat and /proc/vmstat within 2 %.
fn pid_mode_matches_the_kernel(fault_end: &str) {
    require_root();
    let limits = MemcgLimits {
        memory_bytes: 64 * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(512 * MIB)).expect("sandbox");
    let mut workload = Workload::spawn(&[
        "faults",
        "--file-mib",
        "32",
        "--anon-mib",
        "64",
        "--swap-mib",
        "160",
    ]);
    sandbox
        .memcg
        .add_pid(workload.pid)
        .expect("move the workload into the memcg");
    let pid = workload.pid.to_string();
    let recorder = Recorder::start(&["--pid", &pid, "--fault-end", fault_end, "--duration", "120"]);

    let pswpin_before = vmstat("pswpin");
    workload.go();
    let outcome: FaultOutcome = workload.finish();
    let pswpin = vmstat("pswpin") - pswpin_before;
    let report = recorder.finish();

    assert_eq!(report.stop_reason, StopReason::TracedExited);
    let procs = &report.processes;
    let pids: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![outcome.pid], "only the traced process appears");
    let p = &procs[0];
    let minor = p.classes.minor.latency.count;
    let file = p.classes.major_file.latency.count;
    let swap = p.classes.swap_in.latency.count;
    eprintln!(
        "memtrace: minor {minor} file {file} swap-in {swap}; kernel: minflt {} majflt {} pswpin {pswpin}",
        outcome.total.minflt, outcome.total.majflt
    );
    // The workload did what it is meant to: without these the comparisons prove little.
    assert!(
        outcome.file.majflt >= 8000,
        "file phase made {} major faults",
        outcome.file.majflt
    );
    assert!(
        pswpin >= 10_000,
        "swap phase swapped in only {pswpin} pages"
    );

    assert_within("minor faults", minor, outcome.total.minflt, 2.0);
    assert_within("major faults", file + swap, outcome.total.majflt, 2.0);
    assert_within("swap-ins", swap, pswpin, 2.0);
    let (swap_p50, minor_p50) = (
        p.classes.swap_in.latency.p50_ns,
        p.classes.minor.latency.p50_ns,
    );
    assert!(
        swap_p50 > minor_p50,
        "swap-in p50 {swap_p50} <= minor p50 {minor_p50}"
    );
    assert_eq!(report.lost.total, 0, "lost records");
    assert_eq!(report.lost.faults, 0, "lost fault records");
    drop(sandbox);
}

#[test]
fn pid_mode_matches_the_kernel_with_perf_end_hooks() {
    pid_mode_matches_the_kernel("perf");
}

#[test]
fn pid_mode_matches_the_kernel_with_the_memcg_end_hook() {
    pid_mode_matches_the_kernel("memcg");
}

/// `--children` follows processes started by a traced one.
#[test]
fn children_are_followed() {
    require_root();
    let bin = memtrace_tests::memtrace_bin();
    let script = format!(
        "read go; {} workload faults --file-mib 0 --anon-mib 16 --swap-mib 0",
        bin.display()
    );
    let mut shell = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let guard = KillOnDrop(&mut shell);
    let pid = guard.0.id().to_string();
    let recorder = Recorder::start(&["--pid", &pid, "--children", "--duration", "60"]);
    use std::io::Write;
    guard
        .0
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("release sh");
    let report = recorder.finish();
    let child = report
        .processes
        .iter()
        .find(|p| p.comm == "mt-workload")
        .unwrap_or_else(|| panic!("the child is not in the report: {report:?}"));
    // 16 MiB touched once: 4096 pages.
    assert!(child.classes.minor.latency.count >= 4096, "{child:?}");
    assert!(report.kernel_counters.children_added >= 1);
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Major faults by file: two files read one byte a page from a cold page cache; memtrace names
/// each file by its path and counts exactly its pages, as the kernel's majflt does.
#[test]
fn major_faults_are_counted_per_file() {
    require_root();
    let scratch = memtrace_tests::Scratch::on_disk("files");
    let dir = scratch.0.to_str().expect("utf-8").to_string();
    let mut workload = Workload::spawn(&["files", "--mib", "4", "--mib", "12", "--dir", &dir]);
    let recorder = Recorder::start(&["--pid", &workload.pid.to_string(), "--duration", "60"]);
    workload.go();
    let reads: Vec<memtrace::lab::workload::files::FileRead> = workload.finish();
    let report = recorder.finish();
    eprintln!("workload: {reads:?}\nmemtrace: {:#?}", report.files);
    for read in &reads {
        assert_eq!(
            read.majflt, read.pages,
            "the workload's own faults: {read:?}"
        );
        let file = report
            .files
            .files
            .iter()
            .find(|f| f.path.as_deref() == Some(read.path.as_str()))
            .unwrap_or_else(|| panic!("{} named in {:#?}", read.path, report.files));
        assert_eq!(file.latency.count, read.pages, "faults of {}", read.path);
        assert!(file.latency.p50_ns > 0 && file.latency.max_ns >= file.latency.p50_ns);
    }
    let per_file: u64 = report.files.files.iter().map(|f| f.latency.count).sum();
    let major_file = report.total.major_file.latency.count;
    assert_eq!(
        per_file, major_file,
        "every major file fault has its file (binary and libraries included)"
    );
}
