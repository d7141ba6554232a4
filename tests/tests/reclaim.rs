//! Reclaim stalls and swap traffic against the kernel's counters: a memcg swap storm in a
//! sandbox, and global direct reclaim provoked safely (hugepages + a large sparse file read).
use std::{fs::File, path::PathBuf};

use memtrace::{
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::faults::FaultOutcome,
    report::{Report, stalls::MemcgSwap, timeline::TimelineRow},
};
use memtrace_tests::{Recorder, Workload, assert_within, meminfo_kb, require_root, vmstat};

const MIB: u64 = 1 << 20;

/// The swap share of the sandbox's memory cgroup in a report.
fn memcg_swap<'a>(report: &'a Report, path: &str) -> &'a MemcgSwap {
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
        .filter(|r| r.end_s() <= 1.9)
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
        .filter(|r| r.end_s() > 2.0 && r.flagged)
        .count();
    assert!(storm >= 1, "no storm interval flagged: {rows:#?}");
    drop(sandbox);
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

fn allocstalls() -> u64 {
    let text = std::fs::read_to_string("/proc/vmstat").expect("vmstat");
    text.lines()
        .filter(|l| l.starts_with("allocstall_"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// Each node's kswapd CPU time so far, from its `/proc/PID/schedstat` (the test's own reading).
fn kswapd_cpu_ns() -> u64 {
    let threads = memtrace::collect::kswapd::NodeThreads::kswapd();
    let readings = threads.read();
    assert!(!readings.is_empty(), "no kswapd thread found");
    readings.iter().map(|(_, ns)| ns).sum()
}

/// Global memory pressure, provoked safely: memory left fragmented by a workload, a hugepage
/// pool filled until about 3 GiB stay free (each 2 MiB allocation that finds no free block
/// compacts), then an 8 GiB sparse file read (page cache that must be reclaimed). memtrace's
/// direct-reclaim stalls equal allocstall, its direct-compaction stalls equal compact_stall,
/// and its kswapd CPU time is within 5 % of kswapd's schedstat.
#[test]
fn global_pressure_stalls_and_kswapd_match_the_kernel() {
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
    File::create(&pressure.file)
        .and_then(|f| f.set_len(8 << 30))
        .expect("sparse file");
    let mut fragmenter = Workload::spawn(&["fragment", "--mib", "4096"]);
    fragmenter.go();
    fragmenter.wait_for_line("ready");

    // Intervals with 0.1 % of them stalled are flagged, so that each gets a verdict: how long
    // the recipe's stalls take varies from run to run (often under the default 10 %).
    let recorder = Recorder::start(&["--duration", "300", "--stall-threshold", "0.1"]);
    let begins = memtrace_tests::TraceCount::start("vmscan/mm_vmscan_direct_reclaim_begin");
    let free_before_kb = meminfo_kb("MemFree");
    let (stalls_before, compact_before) = (allocstalls(), vmstat("compact_stall"));
    let kswapd_before = kswapd_cpu_ns();
    // Leave about 3 GiB free: the pool fill gives up rather than OOM-killing.
    let huge_kb = meminfo_kb("Hugepagesize");
    let pages = meminfo_kb("MemFree").saturating_sub(3 << 20) / huge_kb;
    std::fs::write(NR_HUGEPAGES, pages.to_string()).expect("set nr_hugepages");
    let after_fill = std::fs::read_to_string("/proc/zoneinfo").expect("/proc/zoneinfo");
    let status = std::process::Command::new("cat")
        .arg(&pressure.file)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("cat");
    assert!(status.success());
    let compacted = vmstat("compact_stall") - compact_before;
    let stalls = allocstalls() - stalls_before;
    let traced = begins.stop();
    // kswapd goes back to sleep once the pressure is gone: wait for it before the last reading.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let kswapd = kswapd_cpu_ns() - kswapd_before;
    recorder.interrupt();
    let report = recorder.finish();
    drop(fragmenter);
    drop(pressure);

    let sum = |f: &dyn Fn(&memtrace::report::stalls::StallsReport) -> u64| -> u64 {
        report.processes.iter().map(|p| f(&p.stalls)).sum()
    };
    let counted = sum(&|s| s.direct_reclaim.latency.count);
    let compactions = sum(&|s| s.compaction.latency.count);
    let zone_runs = sum(&|s| s.compaction.zone_runs);
    let cpu: u64 = report.kswapd.iter().filter_map(|n| n.cpu_ns).sum();
    let awake: u64 = report.kswapd.iter().map(|n| n.awake_ns).sum();
    eprintln!(
        "memtrace: {counted} direct-reclaim stalls, {compactions} compaction stalls \
         ({zone_runs} zone runs), kswapd CPU {cpu} ns (awake {awake} ns); kernel: allocstall \
         delta {stalls}, compact_stall delta {compacted}, kswapd schedstat delta {kswapd} ns; \
         tracefs mm_vmscan_direct_reclaim_begin {traced}; {:?}",
        report.kernel_counters
    );
    for p in report.processes.iter().filter(|p| p.stall_time_ns > 0) {
        eprintln!(
            "  {}[{}]: direct {} compaction {}",
            p.comm, p.pid, p.stalls.direct_reclaim.latency.count, p.stalls.compaction.latency.count
        );
    }
    assert!(
        stalls > 0,
        "the recipe caused no direct reclaim on this machine"
    );
    assert!(
        compacted > 0,
        "the recipe caused no direct compaction on this machine"
    );
    assert!(kswapd > 0, "kswapd did not run");
    assert_eq!(report.lost.total, 0);
    assert_eq!(
        counted, stalls,
        "direct-reclaim stalls vs /proc/vmstat allocstall_*"
    );
    assert_eq!(
        compactions, compacted,
        "direct-compaction stalls vs /proc/vmstat compact_stall"
    );
    assert_within("kswapd CPU time", cpu, kswapd, 5.0);
    assert!(cpu <= awake, "kswapd CPU {cpu} ns > awake {awake} ns");
    for p in report.processes.iter().filter(|p| p.stall_time_ns > 0) {
        for (kind, s) in p.stalls.iter() {
            if s.latency.count > 0 {
                eprintln!(
                    "{} {kind:?}: {} stalls, {} succeeded, {} deferred; zones {:?}; allocations {:?}",
                    p.comm, s.latency.count, s.succeeded, s.deferred, s.zones, s.allocations
                );
            }
        }
    }
    eprintln!("kswapd: {:?}", report.kswapd);
    eprintln!("allocator: {:?}", report.allocator);
    assert_zones_against_the_watermarks(&report.timeline, free_before_kb);
    assert_fragmentation_verdict(&report, &after_fill);
    // Every stall carries the zones as it began; those that did not begin under min asked for
    // high-order blocks (the reason they reclaimed with free memory to spare).
    for p in &report.processes {
        for s in [&p.stalls.direct_reclaim, &p.stalls.compaction] {
            assert_eq!(s.zones.zones_read, s.latency.count, "{}: {:?}", p.comm, s);
            for a in &s.allocations {
                assert!(
                    a.zones.began_under_min == a.count || a.order > 0,
                    "{}: order-0 stalls that began above min: {a:?}",
                    p.comm
                );
            }
        }
    }
    assert!(
        report.kswapd.iter().any(|n| !n.wakes.is_empty()),
        "no kswapd wake seen"
    );
}

/// The pool fill's stalls are for huge pages while the zones keep plenty free: the report's
/// verdicts must say fragmentation, never watermarks, and name the fill's zone.
fn assert_fragmentation_verdict(report: &Report, after_fill: &str) {
    use memtrace::report::verdict::Cause;
    let zones = memtrace::collect::procfs::parse_zoneinfo(after_fill);
    for z in &zones {
        eprintln!(
            "after the fill: node {} {} free {} pages (low {})",
            z.node, z.zone, z.free, z.low
        );
    }
    assert!(
        zones.iter().all(|z| z.free > z.low),
        "the recipe left a zone under its low watermark: not the fragmentation case"
    );
    for v in &report.verdicts {
        eprintln!("verdict at {:.1} s: {:?}: {}", v.start_s, v.cause, v.text);
    }
    assert!(
        report
            .verdicts
            .iter()
            .all(|v| v.cause == Cause::Fragmentation),
        "a verdict other than fragmentation"
    );
    assert!(
        report
            .verdicts
            .iter()
            .any(|v| v.text.contains("largest free block fell to order")),
        "no fragmentation verdict for the pool fill's stalls"
    );
}

/// The zones in the timeline are the kernel's (those of /proc/zoneinfo that manage memory) with
/// the kernel's watermarks, each interval's readings are consistent, and the pressure shows in
/// them. (Free stays far above `low` in this recipe: its direct reclaim is for the pool's
/// huge pages, high-order allocations, not for memory running out.)
fn assert_zones_against_the_watermarks(timeline: &[TimelineRow], free_before_kb: u64) {
    let zoneinfo = std::fs::read_to_string("/proc/zoneinfo").expect("/proc/zoneinfo");
    let kernel = memtrace::collect::procfs::parse_zoneinfo(&zoneinfo);
    let mut names: Vec<(u32, String)> = kernel.iter().map(|z| (z.node, z.zone.clone())).collect();
    names.sort();
    for row in timeline {
        let mut zones: Vec<(u32, String)> =
            row.zones.iter().map(|z| (z.node, z.zone.clone())).collect();
        zones.sort();
        assert_eq!(
            zones, names,
            "zones of the interval at {:.1} s",
            row.start_s
        );
        for z in &row.zones {
            // Read together with zoneinfo: the buddy allocator's free lists hold the zone's
            // free pages (NR_FREE_PAGES), up to what moved in the microseconds between.
            let in_blocks: u64 = (z.free_blocks.iter().enumerate())
                .map(|(order, &n)| n << order)
                .sum();
            assert!(
                in_blocks.abs_diff(z.free_pages) <= 1024 + z.free_pages / 20,
                "buddyinfo holds {in_blocks} free pages, zoneinfo {}: {z:?}",
                z.free_pages
            );
            assert!(z.largest_free_order.is_some() && z.lowest_largest_free_order.is_some());
            assert!(z.readings > 0, "{z:?}");
            assert!(z.lowest_free_pages <= z.free_pages, "{z:?}");
            assert!(
                z.min_pages <= z.low_pages && z.low_pages <= z.high_pages,
                "{z:?}"
            );
            assert!(
                z.below_min <= z.below_low && z.below_low <= z.readings,
                "{z:?}"
            );
        }
    }
    // The watermarks without the boost (which fragmentation events raise and kswapd lowers)
    // are the kernel's: min_free_kbytes and watermark_scale_factor did not change.
    let last = timeline.last().expect("a timeline");
    for z in &last.zones {
        let k = kernel
            .iter()
            .find(|k| k.node == z.node && k.zone == z.zone)
            .expect("the zone in /proc/zoneinfo");
        let (mine, theirs) = (z.boost_pages.unwrap_or(0), k.boost.unwrap_or(0));
        assert_eq!(
            (z.min_pages - mine, z.low_pages - mine, z.high_pages - mine),
            (k.min - theirs, k.low - theirs, k.high - theirs),
            "watermarks of node {} {}",
            z.node,
            z.zone
        );
    }
    let page_kb = 4; // x86-64, the only architecture memtrace's fault hooks exist on
    let lowest_kb = timeline
        .iter()
        .map(|row| row.zones.iter().map(|z| z.lowest_free_pages).sum::<u64>() * page_kb)
        .min()
        .unwrap_or(u64::MAX);
    for row in timeline {
        let zones: Vec<String> = row
            .zones
            .iter()
            .map(|z| {
                format!(
                    "{} lowest {} (min {} low {} high {}, {} of {} readings below low), \
                     largest free order down to {:?}",
                    z.zone,
                    z.lowest_free_pages,
                    z.min_pages,
                    z.low_pages,
                    z.high_pages,
                    z.below_low,
                    z.readings,
                    z.lowest_largest_free_order
                )
            })
            .collect();
        eprintln!("  {:.1} s: {}", row.start_s, zones.join("; "));
    }
    eprintln!("lowest free {lowest_kb} kB against {free_before_kb} kB before the recipe");
    assert!(
        lowest_kb < free_before_kb / 2,
        "the zones' readings never showed the pool taking memory: lowest {lowest_kb} kB, \
         {free_before_kb} kB free before"
    );
}

/// Watermark pressure, made safely: the page cache filled with clean pages (a sparse file as
/// large as the free memory and 2 GiB more, read), 4 GiB of anonymous memory being touched, and
/// meanwhile the min watermark raised (`vm.min_free_kbytes`, restored on every path)
/// above what each zone has free. Allocations then find every zone under min and reclaim
/// directly until reclaim of the cache lifts free above it: each stall carries the zones as it
/// began, kswapd's wakes are seen with their zone, and the verdict says watermarks. Nothing can
/// be OOM-killed: the clean cache to reclaim is several times what the workload takes.
#[test]
fn watermark_pressure_stalls_begin_under_min() {
    require_root();
    let scratch = memtrace_tests::Scratch::on_disk("watermarks");
    let file = scratch.file("sparse");
    let size = (meminfo_kb("MemFree") + (2 << 20)) << 10;
    File::create(&file)
        .and_then(|f| f.set_len(size))
        .expect("sparse file");
    let status = std::process::Command::new("cat")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("cat");
    assert!(status.success());
    let (free_kb, cached_kb) = (meminfo_kb("MemFree"), meminfo_kb("Cached"));
    eprintln!("after the read: free {free_kb} kB, cached {cached_kb} kB");
    assert!(
        cached_kb > 8 << 20,
        "cached {cached_kb} kB: not enough clean cache to reclaim safely"
    );
    let mut workload = Workload::spawn(&["faults", "--file-mib", "0", "--anon-mib", "4096"]);
    // The stalls are brief (reclaiming clean cache lifts free back above min within tens of
    // microseconds to milliseconds, and some runs see just two): a threshold of 0 flags every
    // interval, so each interval with a direct stall gets a verdict, however short its stalls.
    let recorder = Recorder::start(&[
        "--duration",
        "300",
        "--interval",
        "500ms",
        "--stall-threshold",
        "0",
    ]);
    let begins = memtrace_tests::TraceCount::start("vmscan/mm_vmscan_direct_reclaim_begin");
    let stalls_before = allocstalls();
    workload.go();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let min_kb = min_free_kb_over_every_zone();
    eprintln!("vm.min_free_kbytes raised to {min_kb}");
    let raised = memtrace_tests::Sysctl::set("/proc/sys/vm/min_free_kbytes", &min_kb.to_string());
    let _: FaultOutcome = workload.finish();
    let stalls = allocstalls() - stalls_before;
    let traced = begins.stop();
    drop(raised);
    std::thread::sleep(std::time::Duration::from_secs(1));
    recorder.interrupt();
    let report = recorder.finish();
    drop(scratch);

    let direct: Vec<_> = report
        .processes
        .iter()
        .map(|p| (p, &p.stalls.direct_reclaim))
        .filter(|(_, s)| s.latency.count > 0)
        .collect();
    for (p, s) in &direct {
        eprintln!(
            "{}[{}]: {} direct-reclaim stalls; zones {:?}; {:?}",
            p.comm, p.pid, s.latency.count, s.zones, s.allocations
        );
    }
    eprintln!("kswapd: {:?}", report.kswapd);
    for v in &report.verdicts {
        eprintln!("verdict at {:.1} s: {:?}: {}", v.start_s, v.cause, v.text);
    }
    let counted: u64 = direct.iter().map(|(_, s)| s.latency.count).sum();
    eprintln!(
        "memtrace {counted} direct-reclaim stalls, kernel allocstall delta {stalls}, \
         tracefs mm_vmscan_direct_reclaim_begin {traced}; {:?}",
        report.kernel_counters
    );
    assert!(stalls > 0, "the recipe caused no direct reclaim");
    assert_eq!(counted, stalls, "direct-reclaim stalls vs allocstall_*");
    assert_eq!(report.lost.total, 0);
    let read: u64 = direct.iter().map(|(_, s)| s.zones.zones_read).sum();
    assert_eq!(read, counted, "a stall without the zones as it began");
    let under_min: u64 = direct.iter().map(|(_, s)| s.zones.began_under_min).sum();
    assert!(under_min > 0, "no stall began with a zone under min");
    assert!(
        report.kswapd.iter().any(|n| !n.wakes.is_empty()),
        "no kswapd wake seen"
    );
    assert!(
        report
            .verdicts
            .iter()
            .any(|v| v.cause == memtrace::report::verdict::Cause::Watermarks),
        "no verdict names the watermarks"
    );
}

/// A `vm.min_free_kbytes` that puts every zone's min watermark 30 % above its free pages now:
/// the kernel shares it out among the zones by their managed pages. (DMA, a few MiB that
/// ordinary allocations may not use, is left out.)
fn min_free_kb_over_every_zone() -> u64 {
    let zoneinfo = std::fs::read_to_string("/proc/zoneinfo").expect("/proc/zoneinfo");
    let zones = memtrace::collect::procfs::parse_zoneinfo(&zoneinfo);
    let managed: u64 = zones.iter().map(|z| z.managed).sum();
    let worst = zones
        .iter()
        .filter(|z| z.managed * 100 >= managed)
        .map(|z| z.free as f64 / z.managed as f64)
        .fold(0.0, f64::max);
    let page_kb = 4;
    (worst * 1.3 * managed as f64) as u64 * page_kb
}
