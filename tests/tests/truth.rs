//! What each fault figure means, against the kernel's own accounting: transparent huge page
//! faults have a class of their own (thp_fault_alloc), and each fault's time splits into
//! on-CPU, waiting for a CPU, and blocked (delay accounting's block I/O wait, schedstat's
//! run delay).
use memtrace::{
    lab::workload::pages::{SequentialOutcome, ThpOutcome},
    report::ClassesReport,
};
use memtrace_tests::{Recorder, Workload, require_root};

#[derive(serde::Deserialize)]
struct PagesOutcome {
    thp: Option<ThpOutcome>,
    sequential: Option<SequentialOutcome>,
}

/// Runs `memtrace workload pages ARGS` traced by `--pid`; returns its outcome and its classes.
fn traced_pages(args: &[&str]) -> (PagesOutcome, ClassesReport) {
    let mut workload = Workload::spawn(&[&["pages"], args].concat());
    let pid = workload.pid.to_string();
    let recorder = Recorder::start(&["--pid", &pid, "--duration", "120"]);
    workload.go();
    let outcome: PagesOutcome = workload.finish();
    let report = recorder.finish();
    assert_eq!(report.lost.total, 0, "lost records");
    let process = report
        .processes
        .iter()
        .find(|p| p.pid.to_string() == pid)
        .expect("the workload in the report");
    (outcome, process.classes.clone())
}

#[test]
fn thp_faults_are_a_class_of_their_own() {
    require_root();
    let enabled =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").expect("THP sysfs");
    assert!(
        enabled.contains("[madvise]") || enabled.contains("[always]"),
        "transparent huge pages are off here ({enabled}): this test needs them"
    );
    let (outcome, classes) = traced_pages(&["--thp-mib", "256"]);
    let thp = outcome.thp.expect("THP outcome");
    eprintln!(
        "memtrace: thp {} (p50 {} ns), minor {} (p50 {} ns); kernel: thp_fault_alloc {}, \
         {} chunks, minflt {}",
        classes.thp.latency.count,
        classes.thp.latency.p50_ns,
        classes.minor.latency.count,
        classes.minor.latency.p50_ns,
        thp.thp_fault_alloc,
        thp.chunks,
        thp.faults.minflt
    );
    assert_eq!(
        thp.thp_fault_alloc, thp.chunks,
        "every 2 MiB chunk should have been one huge page fault"
    );
    assert_eq!(classes.thp.latency.count, thp.thp_fault_alloc);
    // A huge page fault zeroes 512 pages: its class keeps the minor one free of it.
    assert!(
        classes.thp.latency.p50_ns > 10 * classes.minor.latency.p50_ns,
        "thp p50 {} vs minor p50 {}",
        classes.thp.latency.p50_ns,
        classes.minor.latency.p50_ns
    );
}

/// Restores `kernel.task_delayacct`, also on panic.
struct DelayAccounting(String);

const TASK_DELAYACCT: &str = "/proc/sys/kernel/task_delayacct";

impl DelayAccounting {
    fn enable() -> Self {
        let before = std::fs::read_to_string(TASK_DELAYACCT).expect("task_delayacct");
        std::fs::write(TASK_DELAYACCT, "1").expect("enable delay accounting");
        Self(before)
    }
}

impl Drop for DelayAccounting {
    fn drop(&mut self) {
        let _ = std::fs::write(TASK_DELAYACCT, self.0.trim());
    }
}

/// A sequential read of a cold file through a mapping: readahead makes most faults wait for a
/// page already under I/O, which the kernel counts as minor. The time memtrace calls blocked
/// is bounded by delay accounting's block I/O wait from below (that wait also holds the wait
/// for a CPU after each wake-up), and off-CPU time bounds it from above; waiting for a CPU is
/// within the thread's schedstat run delay.
#[test]
fn fault_time_splits_into_on_cpu_waiting_and_blocked() {
    require_root();
    let accounting = DelayAccounting::enable();
    let (outcome, classes) = traced_pages(&["--seq-mib", "256"]);
    drop(accounting);
    let seq = outcome.sequential.expect("sequential outcome");
    let blkio = seq.blkio.expect("taskstats of the workload");
    let mut off_cpu = 0;
    let (mut blocked, mut waiting) = (0, 0);
    for (class, c) in classes.iter() {
        let (on, wait, block) = (
            c.on_cpu_ns.expect("on-CPU time"),
            c.waiting_ns.expect("waiting time"),
            c.blocked_ns.expect("blocked time"),
        );
        eprintln!(
            "{:>10}: {} faults, total {} ns = on-CPU {on} + waiting {wait} + blocked {block}",
            class.name(),
            c.latency.count,
            c.latency.total_ns
        );
        assert_eq!(
            on + wait + block,
            c.latency.total_ns,
            "{} split does not add up",
            class.name()
        );
        off_cpu += wait + block;
        blocked += block;
        waiting += wait;
    }
    eprintln!(
        "memtrace: blocked {blocked} ns, off-CPU {off_cpu} ns, waiting {waiting} ns; kernel: \
         blkio delay {} ns over {} waits, run delay {} ns; {} pages, minflt {} majflt {}",
        blkio.total_ns,
        blkio.count,
        seq.run_delay_ns,
        seq.pages,
        seq.faults.minflt,
        seq.faults.majflt
    );
    assert!(blkio.count > 0, "the read waited for no I/O: a warm file?");
    // Tolerance: 2 % and 1 ms, for the clocks' different reading points.
    let slack = |v: u64| v + v / 50 + 1_000_000;
    assert!(
        blocked <= slack(blkio.total_ns),
        "blocked {blocked} ns > block I/O delay {} ns",
        blkio.total_ns
    );
    assert!(
        blkio.total_ns <= slack(off_cpu),
        "block I/O delay {} ns > time off the CPU in faults {off_cpu} ns",
        blkio.total_ns
    );
    assert!(
        waiting <= slack(seq.run_delay_ns),
        "waiting {waiting} ns > run delay {} ns",
        seq.run_delay_ns
    );
    // The point of the split: faults counted minor waited for I/O.
    assert!(
        classes.minor.blocked_ns > Some(0),
        "no minor fault was blocked: {:?}",
        classes.minor
    );
}
