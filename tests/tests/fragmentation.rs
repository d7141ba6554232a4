//! Fragmentation and compaction against the kernel's own counters: free memory left in small
//! blocks, then a hugepage pool asked for (every 2 MiB allocation that finds no free block
//! compacts) and kernel objects allocated (allocations that take blocks of another migrate
//! type). The sysctl is restored and the scratch files removed on every path.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use memtrace::collect::procfs::{parse_buddyinfo, parse_zoneinfo};
use memtrace_tests::{
    Recorder, Scratch, Sysctl, TraceCount, Workload, meminfo_kb, require_root, vmstat,
};

/// What the test's own readings of /proc/buddyinfo and /proc/zoneinfo saw, every 10 ms.
#[derive(Debug, Default)]
struct Seen {
    readings: u64,
    /// The highest zone's largest free order: its lowest and highest over the readings.
    lowest_order: Option<u32>,
    highest_order: Option<u32>,
    /// The least free pages above `min` of any zone.
    least_headroom: i64,
}

/// Reads the zones every 10 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
}

impl Sampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen {
                least_headroom: i64::MAX,
                ..Seen::default()
            };
            while !flag.load(Ordering::Relaxed) {
                let buddy = std::fs::read_to_string("/proc/buddyinfo").expect("buddyinfo");
                // The last line of node 0 is its highest populated zone.
                if let Some((_, _, blocks)) =
                    parse_buddyinfo(&buddy).into_iter().rfind(|z| z.0 == 0)
                {
                    let order = blocks.iter().rposition(|&n| n > 0).map(|o| o as u32);
                    seen.lowest_order = seen.lowest_order.min(order).or(order);
                    seen.highest_order = seen.highest_order.max(order);
                }
                let zoneinfo = std::fs::read_to_string("/proc/zoneinfo").expect("zoneinfo");
                for z in parse_zoneinfo(&zoneinfo) {
                    seen.least_headroom = seen.least_headroom.min(z.free as i64 - z.min as i64);
                }
                seen.readings += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        Self { stop, thread }
    }

    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler")
    }
}

/// Looks up `n` names that do not exist in `dir`: each leaves a negative dentry, a kernel
/// object of the reclaimable migrate type, freed when the directory goes.
fn negative_dentries(dir: &std::path::Path, n: u32) {
    for i in 0..n {
        let _ = std::fs::symlink_metadata(dir.join(format!("x{i}")));
    }
}

/// Compaction stalls against compact_stall, compact_success and compact_fail; their order and
/// the largest free block as each began against the test's own buddyinfo readings; and the
/// allocator's fallbacks between migrate types against the kernel's own count of the
/// tracepoint (a tracefs instance).
#[test]
fn fragmentation_compaction_and_fallbacks_match_the_kernel() {
    require_root();
    let original = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").expect("nr_hugepages");
    assert_eq!(original.trim(), "0", "this test expects no hugepage pool");
    let scratch = Scratch::new("fragmentation");
    // Clean page cache could serve the pool once reclaimed (whole large folios free whole
    // blocks): dropped first, so that the pool's last huge pages can only come from compaction.
    std::fs::write("/proc/sys/vm/drop_caches", "1").expect("drop the page cache");
    let mut fragmenter = Workload::spawn(&["fragment", "--mib", "4096"]);
    fragmenter.go();
    fragmenter.wait_for_line("ready");
    // The kernel's own count of the fallbacks, from before memtrace attaches to after it ends,
    // and from after it attached to before it is stopped: memtrace's count lies between.
    const KCOMPACTD: &str = "compaction/mm_compaction_kcompactd_wake";
    let outer = TraceCount::start("kmem/mm_page_alloc_extfrag");
    let outer_kcompactd = TraceCount::start(KCOMPACTD);
    let recorder = Recorder::start(&["--duration", "300"]);
    let inner = TraceCount::start("kmem/mm_page_alloc_extfrag");
    let inner_kcompactd = TraceCount::start(KCOMPACTD);
    let sampler = Sampler::start();
    let before = ["compact_stall", "compact_success", "compact_fail"].map(vmstat);

    // Ask for every free block of a huge page's order or more, and 256 MiB beyond: those last
    // huge pages can only come from compaction. In a VM some free blocks may be off the lists
    // when buddyinfo is read (reported to the host, or memory plugged meanwhile): one such run
    // got 128 more huge pages than buddyinfo showed without compacting. So the pool grows by
    // 256 MiB at a time until the kernel has compacted. At least 1 GiB stays free, and the pool
    // fill gives up rather than OOM-killing.
    let huge_kb = meminfo_kb("Hugepagesize");
    let order = (huge_kb * 1024 / page_size()).trailing_zeros();
    let buddy = std::fs::read_to_string("/proc/buddyinfo").expect("buddyinfo");
    let in_blocks: u64 = parse_buddyinfo(&buddy)
        .iter()
        .filter(|(_, zone, _)| zone != "DMA")
        .flat_map(|(_, _, blocks)| blocks.iter().enumerate().skip(order as usize))
        .map(|(o, &n)| n << (o as u32 - order))
        .sum();
    let step = (256 << 10) / huge_kb;
    let cap = meminfo_kb("MemFree").saturating_sub(1 << 20) / huge_kb;
    let mut pages = (in_blocks + step).min(cap);
    let pool = Sysctl::set("/proc/sys/vm/nr_hugepages", &pages.to_string());
    while vmstat("compact_stall") == before[0] && pages < cap {
        pages = (pages + step).min(cap);
        std::fs::write("/proc/sys/vm/nr_hugepages", pages.to_string()).expect("grow the pool");
    }
    let got = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").expect("nr_hugepages");
    eprintln!(
        "pool: asked {pages} huge pages ({in_blocks} in free blocks), got {}; free now {} kB; \
         buddyinfo before:\n{buddy}",
        got.trim(),
        meminfo_kb("MemFree")
    );
    // Then more reclaimable kernel objects than the reclaimable blocks' free pages hold: the
    // rest must come from blocks of another migrate type.
    let dentries = dentries_beyond_free_reclaimable();
    negative_dentries(&scratch.0, dentries);

    let after = ["compact_stall", "compact_success", "compact_fail"].map(vmstat);
    let [stalls, successes, failures] = [0, 1, 2].map(|i| after[i] - before[i]);
    let seen = sampler.finish();
    std::thread::sleep(Duration::from_millis(500));
    let inner_extfrag = inner.stop();
    let kcompactd_inner = inner_kcompactd.stop();
    recorder.interrupt();
    let report = recorder.finish();
    let kernel_extfrag = outer.stop();
    let kcompactd_outer = outer_kcompactd.stop();
    drop(pool);
    drop(fragmenter);
    drop(scratch);

    let me = std::process::id();
    let compactions = |pid: Option<u32>| {
        report
            .processes
            .iter()
            .filter(move |p| pid.is_none_or(|pid| p.pid == pid))
            .map(|p| &p.stalls.compaction)
    };
    let count: u64 = compactions(None).map(|c| c.latency.count).sum();
    let succeeded: u64 = compactions(None).map(|c| c.succeeded).sum();
    let deferred: u64 = compactions(None).map(|c| c.deferred).sum();
    let mine = compactions(Some(me))
        .next()
        .expect("this test's compaction stalls");
    let allocator = &report.allocator;
    eprintln!(
        "memtrace: {count} compaction stalls ({succeeded} succeeded, {deferred} deferred), \
         {} attempts, {} fallbacks ({} fragmenting); kernel: compact_stall {stalls}, \
         compact_success {successes}, compact_fail {failures}, extfrag events \
         {inner_extfrag}..{kernel_extfrag} ({dentries} dentries)",
        allocator.compaction_attempts, allocator.extfrag, allocator.extfrag_fragmenting
    );
    eprintln!(
        "this test's stalls: {:?}; {:?}",
        mine.zones, mine.allocations
    );
    eprintln!("the test's readings: {seen:?}");
    eprintln!(
        "kcompactd: memtrace {} runs, CPU {:?} ns; tracefs {kcompactd_inner}..{kcompactd_outer}",
        allocator.kcompactd_wakes, allocator.kcompactd_cpu_ns
    );
    for v in &report.verdicts {
        eprintln!("verdict at {:.1} s: {:?}: {}", v.start_s, v.cause, v.text);
    }

    assert!(stalls > 0, "the recipe caused no direct compaction");
    assert_eq!(count, stalls, "compaction stalls vs compact_stall");
    assert_eq!(succeeded, successes, "succeeded vs compact_success");
    assert_eq!(count - succeeded, failures, "failed vs compact_fail");
    assert!(allocator.compaction_attempts >= count);
    assert_eq!(report.lost.total, 0);
    // Every stall of the pool fill asked for a huge page, and carried the zones as it began.
    let order = order as i32;
    assert!(
        mine.allocations.iter().all(|a| a.order == order),
        "{:?}",
        mine.allocations
    );
    assert_eq!(mine.zones.zones_read, mine.latency.count);
    // Free memory stayed far above min (the test's readings say so): no stall began under it.
    assert!(seen.readings > 10 && seen.least_headroom > 0, "{seen:?}");
    assert_eq!(mine.zones.began_under_min, 0, "{:?}", mine.zones);
    // Fragmentation: stalls began with no free block of the order they needed in the highest
    // zone, as the test's own buddyinfo readings also found in that zone.
    let lowest = mine.zones.lowest_largest_free_order.expect("a free order");
    assert!(lowest < order as u32, "{:?}", mine.zones);
    assert!(
        seen.lowest_order.is_some_and(|o| o < order as u32),
        "{seen:?}"
    );
    // The fallbacks: the kernel's own count of the tracepoint, over a window inside memtrace's
    // and one around it.
    assert!(inner_extfrag > 0, "the recipe caused no fallback");
    assert!(
        (inner_extfrag..=kernel_extfrag).contains(&allocator.extfrag),
        "memtrace counted {} fallbacks, the kernel {inner_extfrag} while memtrace surely \
         traced and {kernel_extfrag} around it",
        allocator.extfrag
    );
    // kcompactd's runs, the same way (kswapd wakes it after balancing a node for huge pages).
    assert!(
        (kcompactd_inner..=kcompactd_outer).contains(&allocator.kcompactd_wakes),
        "memtrace counted {} kcompactd runs, the kernel {kcompactd_inner}..{kcompactd_outer}",
        allocator.kcompactd_wakes
    );
    assert!(
        allocator.kcompactd_cpu_ns.is_some(),
        "kcompactd's CPU time unread"
    );
}

/// Negative dentries (192 bytes each, reclaimable) enough to fill a quarter more than the free
/// pages of reclaimable blocks (/proc/pagetypeinfo, DMA left out), and 200 000 beyond.
fn dentries_beyond_free_reclaimable() -> u32 {
    let text = std::fs::read_to_string("/proc/pagetypeinfo").expect("/proc/pagetypeinfo");
    let pages: u64 = text
        .lines()
        .filter(|l| l.starts_with("Node") && l.contains(", type") && l.contains(" Reclaimable "))
        .filter(|l| !l.contains(" DMA,"))
        .flat_map(|l| {
            let counts: Vec<u64> = l
                .split_whitespace()
                .rev()
                .map_while(|w| w.parse().ok())
                .collect();
            counts
                .into_iter()
                .rev()
                .enumerate()
                .map(|(order, n)| n << order)
        })
        .sum();
    let per_page = page_size() / 192;
    u32::try_from(pages * per_page * 5 / 4 + 200_000).unwrap_or(u32::MAX)
}

/// The page size.
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("page size")
}
