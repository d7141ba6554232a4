//! Processes coming and going for a long time: memtrace's memory stays flat while every fault
//! is still counted, and a pid the kernel reuses is two processes, not one.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use memtrace::{
    lab::workload::reuse::ReuseOutcome,
    model::{KEEP_COMMANDS, KEEP_EXITED},
};
use memtrace_tests::{Recorder, Workload, require_root};

/// Shell loops forking `/bin/true` (about 2 500 processes a second on two cores), killed on drop.
struct ForkLoops(Vec<Child>);

impl ForkLoops {
    fn start(loops: usize) -> Self {
        Self(
            (0..loops)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do /bin/true; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("start a fork loop")
                })
                .collect(),
        )
    }
}

impl Drop for ForkLoops {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// VmRSS of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

const MB: u64 = 1024;

/// The soak: a minute of fork churn system-wide. Memory must stop growing once the first
/// processes are folded (the reliability target is 64 MB after an hour of this), and the
/// folded report must still hold every fault.
#[test]
fn memory_stays_flat_under_fork_churn() {
    require_root();
    let recorder = Recorder::start(&["--duration", "600"]);
    let loops = ForkLoops::start(2);
    let start = Instant::now();
    let mut curve = Vec::new();
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(5));
        curve.push((start.elapsed().as_secs(), rss_kb(recorder.pid())));
    }
    drop(loops);
    recorder.interrupt();
    let report = recorder.finish();
    eprintln!("memtrace RSS (s, kB) under fork churn: {curve:?}");
    // From 30 s on, about 75 000 processes come and go: even a kilobyte kept per process would
    // add 75 MB. A step of a few MB (a hash table doubling once) is not growth.
    let warm = curve
        .iter()
        .find(|(s, _)| *s >= 30)
        .map(|p| p.1)
        .expect("a sample after 30 s");
    let last = curve.last().map_or(0, |p| p.1);
    let peak = curve.iter().map(|p| p.1).max().unwrap_or(0);
    assert!(peak <= 64 * MB, "peak RSS {peak} kB: {curve:?}");
    assert!(
        last <= warm + 8 * MB,
        "RSS grew from {warm} kB at 30 s to {last} kB at 60 s: {curve:?}"
    );
    let forked: u64 = report
        .processes
        .iter()
        .filter(|p| p.comm.starts_with("true"))
        .map(|p| p.folded_processes.max(1))
        .sum();
    assert!(forked > 20_000, "only {forked} /bin/true processes seen");
    let folded_entries = report
        .processes
        .iter()
        .filter(|p| p.folded_processes > 0)
        .count();
    assert!(folded_entries <= KEEP_COMMANDS + 1);
    let ended_entries = report
        .processes
        .iter()
        .filter(|p| p.exited && p.folded_processes == 0)
        .count();
    assert!(
        ended_entries <= KEEP_EXITED,
        "{ended_entries} ended processes kept"
    );
    // Every fault record is a timed fault of a class or an untimed one (one per execve).
    let counted: u64 = report
        .processes
        .iter()
        .map(|p| p.faults + p.untimed_faults)
        .sum();
    assert_eq!(counted, report.faults, "folding keeps every fault");
    assert_eq!(report.lost.total, 0);
}

/// A process faults 4 000 pages and exits; children are forked until one gets its pid and
/// faults 9 000 pages. Both are reported, apart, each with its own faults (as the kernel
/// counted them for it), and the pid filter does not fill up with the ~30 000 children.
#[test]
fn a_reused_pid_is_two_processes() {
    require_root();
    let mut workload = Workload::spawn(&[
        "pid-reuse",
        "--first-pages",
        "4000",
        "--second-pages",
        "9000",
    ]);
    let pid = workload.pid.to_string();
    let recorder = Recorder::start(&["--pid", &pid, "--children", "--duration", "300"]);
    workload.go();
    let outcome: ReuseOutcome = workload.finish();
    let report = recorder.finish();
    eprintln!(
        "pid {} came back after {} forks: first {:?}, second {:?}",
        outcome.pid, outcome.forks, outcome.first, outcome.second
    );
    let mut lives: Vec<_> = report
        .processes
        .iter()
        .filter(|p| p.pid == outcome.pid && p.folded_processes == 0)
        .collect();
    lives.sort_by(|a, b| a.start_s.partial_cmp(&b.start_s).expect("start times"));
    assert_eq!(lives.len(), 2, "two processes with pid {}", outcome.pid);
    assert!(lives[0].start_s < lives[1].start_s);
    assert!(lives.iter().all(|p| p.exited));
    for (life, kernel) in lives.iter().zip([outcome.first, outcome.second]) {
        let kernel = kernel.minflt + kernel.majflt;
        // The kernel's count stops before the child's exit; memtrace sees the exit's few too.
        assert!(
            life.faults >= kernel && life.faults <= kernel + kernel / 50 + 50,
            "memtrace {} faults, the kernel {kernel}",
            life.faults
        );
    }
    assert_eq!(report.kernel_counters.children_dropped, 0);
    assert!(
        report.kernel_counters.children_added >= outcome.forks,
        "{} children followed of {} forks",
        report.kernel_counters.children_added,
        outcome.forks
    );
}
