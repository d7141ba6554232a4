//! Reclaim stalls and swap traffic against the kernel's counters: a memcg swap storm in a
//! sandbox, and global direct reclaim provoked safely (hugepages + a large sparse file read).
use std::{fs::File, path::PathBuf};

use memtrace::{
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::faults::FaultOutcome,
    report::{Report, stalls::SwapShare, timeline::TimelineRow},
};
use memtrace_tests::{Recorder, Workload, assert_within, require_root, vmstat};

const MIB: u64 = 1 << 20;

/// The swap share of the sandbox's memory cgroup in a report.
fn memcg_swap<'a>(report: &'a Report, path: &str) -> &'a SwapShare {
    report
        .swap
        .by_memcg
        .iter()
        .find(|m| m.memcg_path.as_deref() == Some(path))
        .unwrap_or_else(|| panic!("no swap traffic for {path} in {:?}", report.swap))
}

#[test]
fn a_memcg_swap_storm_matches_the_kernel_and_is_flagged_when_it_starts() {
    require_root();
    let limits = MemcgLimits {
        memory_bytes: 64 * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(512 * MIB)).expect("sandbox");
    // 2 s idle, then 160 MiB written and read back in a 64 MiB memcg.
    let mut workload = Workload::spawn(&[
        "faults",
        "--file-mib",
        "0",
        "--anon-mib",
        "0",
        "--swap-mib",
        "160",
        "--pause-ms",
        "2000",
    ]);
    sandbox.memcg.add_pid(workload.pid).expect("add pid");
    let pid = workload.pid.to_string();
    let recorder = Recorder::start(&["--pid", &pid, "--interval", "500ms", "--duration", "120"]);
    let (pswpin0, pswpout0) = (vmstat("pswpin"), vmstat("pswpout"));
    workload.go();
    let _: FaultOutcome = workload.finish();
    let (pswpin, pswpout) = (vmstat("pswpin") - pswpin0, vmstat("pswpout") - pswpout0);
    let report = recorder.finish();

    let path = sandbox.memcg.path().to_str().expect("utf-8");
    let share = memcg_swap(&report, path);
    eprintln!(
        "memtrace: out {} in {}; kernel: pswpout {pswpout} pswpin {pswpin}",
        share.out_pages, share.in_pages
    );
    assert!(
        pswpout >= 10_000,
        "the storm swapped out only {pswpout} pages"
    );
    assert_within("swap-outs", share.out_pages, pswpout, 2.0);
    assert_within("swap-ins", share.in_pages, pswpin, 2.0);

    let me = report
        .processes
        .iter()
        .find(|p| p.pid == workload_pid(&pid))
        .expect("the workload");
    let memcg = &me.stalls.memcg_reclaim;
    assert!(
        memcg.latency.count > 0,
        "no memcg reclaim stalls: {:?}",
        me.stalls
    );
    assert!(
        memcg.latency.p50_ns > 0 && memcg.pages_reclaimed > 0,
        "{memcg:?}"
    );

    let rows = &report.timeline;
    let quiet: Vec<&TimelineRow> = rows
        .iter()
        // Intervals over by 1.9 s: the workload is still in its 2 s pause.
        .filter(|r| end_s(r) <= 1.9)
        .collect();
    assert!(
        quiet.len() >= 2,
        "expected quiet intervals before the storm: {rows:#?}"
    );
    assert!(
        quiet.iter().all(|r| !r.flagged),
        "a quiet interval was flagged: {quiet:#?}"
    );
    let storm = rows
        .iter()
        // Intervals that end after the 2 s pause: the storm.
        .filter(|r| end_s(r) > 2.0 && r.flagged)
        .count();
    assert!(storm >= 1, "no storm interval flagged: {rows:#?}");
    drop(sandbox);
}

/// When a timeline row ends, in seconds since the recording started.
fn end_s(row: &TimelineRow) -> f64 {
    row.start_s + row.len_ms as f64 / 1000.0
}

fn workload_pid(pid: &str) -> u32 {
    pid.parse().expect("pid")
}

/// Restores `vm.nr_hugepages` and removes the sparse file, also on panic.
struct GlobalPressure {
    original_hugepages: String,
    file: PathBuf,
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

impl Drop for GlobalPressure {
    fn drop(&mut self) {
        let _ = std::fs::write(NR_HUGEPAGES, &self.original_hugepages);
        let _ = std::fs::remove_file(&self.file);
    }
}

fn meminfo_kb(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    memtrace::collect::procfs::meminfo_kb(&text, key).unwrap_or_else(|| panic!("no {key}"))
}

fn allocstalls() -> u64 {
    let text = std::fs::read_to_string("/proc/vmstat").expect("vmstat");
    text.lines()
        .filter(|l| l.starts_with("allocstall_"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

#[test]
fn global_direct_reclaim_stalls_equal_allocstall() {
    require_root();
    let original = std::fs::read_to_string(NR_HUGEPAGES).expect("nr_hugepages");
    assert_eq!(
        original.trim(),
        "0",
        "this test expects no hugepage pool to start with"
    );
    let pressure = GlobalPressure {
        original_hugepages: original,
        file: PathBuf::from(format!(
            "/var/tmp/memtrace-test-sparse-{}",
            std::process::id()
        )),
    };
    // Leave about 3 GiB free: the pool fill gives up rather than OOM-killing.
    let huge_kb = meminfo_kb("Hugepagesize");
    let pages = meminfo_kb("MemFree").saturating_sub(3 << 20) / huge_kb;
    std::fs::write(NR_HUGEPAGES, pages.to_string()).expect("set nr_hugepages");
    File::create(&pressure.file)
        .and_then(|f| f.set_len(8 << 30))
        .expect("sparse file");

    let recorder = Recorder::start(&["--duration", "300"]);
    let before = allocstalls();
    let status = std::process::Command::new("cat")
        .arg(&pressure.file)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("cat");
    assert!(status.success());
    let stalls = allocstalls() - before;
    recorder.interrupt();
    let report = recorder.finish();
    drop(pressure);

    let counted: u64 = report
        .processes
        .iter()
        .map(|p| p.stalls.direct_reclaim.latency.count)
        .sum();
    eprintln!("memtrace: {counted} direct-reclaim stalls; kernel: allocstall delta {stalls}");
    assert!(
        stalls > 0,
        "the recipe caused no direct reclaim on this machine"
    );
    assert_eq!(report.lost.total, 0);
    assert_eq!(
        counted, stalls,
        "direct-reclaim stalls vs /proc/vmstat allocstall_*"
    );
}
