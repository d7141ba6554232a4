//! A small recording for the renderers' tests: three processes over two one-second intervals,
//! with faults, reclaim and compaction stalls, swap traffic, kswapd, an OOM kill and lost
//! records, every number chosen so that the rendered text can be predicted by hand.
//!
//! - interval 0 (`+0 s` to `+1 s`): postgres[100] 4 minor faults (500, 1000, 1500, 2000 ns);
//!   redis[200] 3 minor faults (1 µs each) and one 2 ms compaction stall (order 9); kswapd0
//!   woken once, awake 50 ms; cgroup 501 named `/db.slice`. PSI 0.
//! - interval 1 (`+1 s` to `+2 s`): postgres 2 major file faults (3 ms each), 1 swap-in fault
//!   (250 µs, 8 pages), 3 memcg reclaim stalls (40, 60, 100 ms; 64 pages; allocations order 0
//!   `GFP_KERNEL` x1, order 2 `GFP_HIGHUSER_MOVABLE` x2) and 1 direct reclaim stall (30 ms,
//!   10 pages, order 2 `GFP_KERNEL`): stalled 230 ms of the second, so the interval is flagged;
//!   cron[300] 1 minor fault (700 ns); swap 1500 pages out (kswapd0[90] 1200, postgres 300),
//!   60 in (postgres 50, redis 10), by memcg 501 1400/50 and 999 (no path) 100/10; kswapd0
//!   woken 3 times, awake 150 ms, by postgres order 0 x5 and redis order 3 x2; PSI some 30 %,
//!   full 10 %; 50 pages/s swapped in, 1500 out; the OOM kill of `model::oom::tests` (pid
//!   4242, at +4.00 s of its own clock).
//! - counters: 3 fault records and 1 stall record lost, 1 fault that lost its in-flight slot.
use std::{io, time::Duration};

use memtrace_common::{EventKind, FaultClass, StallKind};

use super::{Report, View};
use crate::{
    model::{
        Model, Tick,
        oom::tests::{kill_event, sample},
    },
    samples::{
        Allocation, CgroupName, ClassSample, End, Header, HookStatus, IntervalSample,
        KernelCounters, KswapdSample, KswapdWake, KswapdWaker, LatencyStats, ProcessSample,
        StallCategory, StallSample, StallTime, StopReason, SwapByMemcg, SwapByTask, TimeSplit,
        growth::{MemoryInterval, MemoryReading},
        host::{HostFacts, HostMemory, Tunables},
        machine::{MachineSample, Thresholds},
        zones::{AllocatorEvents, StallZones},
    },
};

/// One second in ns.
pub(crate) const S: u64 = 1_000_000_000;
/// One millisecond in ns.
pub(crate) const MS: u64 = 1_000_000;
/// CLOCK_MONOTONIC at the start of the recording.
pub(crate) const START: u64 = 10 * S;

/// `___GFP_*_BIT` enumerators of Linux 6.10+ (without KASAN or lockdep): `GFP_KERNEL` is
/// 0xcc0 and `GFP_HIGHUSER_MOVABLE` 0x100cca.
pub(crate) fn gfp_bits() -> Vec<(String, u32)> {
    [
        "DMA",
        "HIGHMEM",
        "DMA32",
        "MOVABLE",
        "RECLAIMABLE",
        "HIGH",
        "IO",
        "FS",
        "ZERO",
        "UNUSED",
        "DIRECT_RECLAIM",
        "KSWAPD_RECLAIM",
        "WRITE",
        "NOWARN",
        "RETRY_MAYFAIL",
        "NOFAIL",
        "NORETRY",
        "MEMALLOC",
        "COMP",
        "NOMEMALLOC",
        "HARDWALL",
        "THISNODE",
        "ACCOUNT",
        "ZEROTAGS",
        "LAST",
    ]
    .iter()
    .enumerate()
    .map(|(bit, name)| (format!("___GFP_{name}_BIT"), bit as u32))
    .collect()
}

pub(crate) const GFP_KERNEL: u32 = 0xcc0;
pub(crate) const GFP_HIGHUSER_MOVABLE: u32 = 0x10_0cca;
pub(crate) const GFP_COMP: u32 = 1 << 18;

/// A distribution of these latencies.
pub(crate) fn stats(latencies_ns: &[u64]) -> LatencyStats {
    let mut stats = LatencyStats::new();
    for &ns in latencies_ns {
        stats.record(ns);
    }
    stats
}

pub(crate) fn faults(class: FaultClass, latencies_ns: &[u64]) -> ClassSample {
    let latency = stats(latencies_ns);
    // A fixed share of the time off the CPU, for renderers to show: a quarter, a tenth of it
    // waiting for a CPU.
    let off_cpu_ns = latency.total_ns() / 4;
    ClassSample {
        class: class as u32,
        latency,
        split: TimeSplit {
            off_cpu_ns,
            waiting_ns: off_cpu_ns / 10,
        },
    }
}

pub(crate) fn stall(
    kind: StallKind,
    latencies_ns: &[u64],
    pages: u64,
    allocations: &[(i32, u32, u64)],
) -> StallSample {
    StallSample {
        kind: kind as u32,
        latency: stats(latencies_ns),
        pages,
        zone_runs: u64::from(kind == StallKind::Compaction) * 2 * latencies_ns.len() as u64,
        // Compaction: all but one attempt succeeded.
        succeeded: u64::from(kind == StallKind::Compaction) * (latencies_ns.len() as u64 - 1),
        deferred: 0,
        allocations: allocations
            .iter()
            .map(|&(order, gfp_flags, count)| Allocation {
                order,
                gfp_flags,
                count,
                zones: stall_zones(kind, count),
            })
            .collect(),
    }
}

/// The zones as `count` stalls of `kind` began: direct reclaim under min in Normal, the others
/// above low with Normal's largest free block at order 8 or 9.
fn stall_zones(kind: StallKind, count: u64) -> StallZones {
    let direct = kind == StallKind::DirectReclaim;
    StallZones {
        read: count,
        under_min: if direct { count } else { 0 },
        under_low: 0,
        min_zones: if direct { 1 << 2 } else { 0 },
        lowest_largest_free_order: Some(8),
        highest_largest_free_order: Some(9),
        orders: 0,
    }
}

fn process(pid: u32, comm: &str) -> ProcessSample {
    ProcessSample {
        pid,
        comm: comm.to_string(),
        named: true,
        ..ProcessSample::default()
    }
}

fn waker(pid: u32, comm: &str, order: i32, count: u64) -> KswapdWaker {
    KswapdWaker {
        pid,
        comm: comm.to_string(),
        order,
        count,
        // Movable: the highest zone a movable allocation may use, as the kernel reports it.
        zid: Some(3),
    }
}

/// The machine at `+secs` s.
fn machine(
    secs: u64,
    psi_some_us: u64,
    psi_full_us: u64,
    pswpin: u64,
    pswpout: u64,
) -> MachineSample {
    MachineSample {
        mono_ns: START + secs * S,
        psi_some_us: Some(psi_some_us),
        psi_full_us: Some(psi_full_us),
        mem_free_kb: 512 * 1024,
        mem_available_kb: 1024 * 1024,
        swap_total_kb: 2 * 1024 * 1024,
        swap_free_kb: 1024 * 1024,
        pswpin,
        pswpout,
        allocstall: 0,
    }
}

/// The counters at the end: 3 fault and 1 stall records lost, 1 failed park.
pub(crate) fn counters() -> KernelCounters {
    let mut lost = [0; memtrace_common::EVENT_KIND_SLOTS as usize];
    lost[EventKind::Fault as usize] = 3;
    lost[EventKind::Stall as usize] = 1;
    KernelCounters {
        lost,
        unmatched_ends: 2,
        parked: 5,
        park_failed: 1,
        children_added: 0,
        children_dropped: 0,
        stalls_dropped: 0,
    }
}

pub(crate) fn header() -> Header {
    Header {
        memtrace_version: "0.1.0".into(),
        start_unix_ns: 1_700_000_000 * S,
        start_mono_ns: START,
        interval_ns: S,
        traced: "every process".into(),
        focus_pids: Vec::new(),
        thresholds: Thresholds::default(),
        hooks: vec![
            HookStatus {
                program: "fault_start".into(),
                hook: "tp_btf/page_fault_user".into(),
                error: None,
            },
            HookStatus {
                program: "kswapd_wake".into(),
                hook: "tp_btf/mm_vmscan_wakeup_kswapd".into(),
                error: Some("no such tracepoint".into()),
            },
        ],
        machine: machine(0, 0, 0, 0, 0),
        host: HostFacts {
            kernel_release: "6.8.0-test".into(),
            gfp_bits: gfp_bits(),
            tunables: Tunables {
                swappiness: Some(60),
                min_free_kbytes: Some(67_584),
                thp_enabled: Some("madvise".into()),
                thp_defrag: Some("defer".into()),
                ..Tunables::default()
            },
            memory: HostMemory {
                page_size: 4096,
                zone_names: ["DMA", "DMA32", "Normal", "Movable", "Device"]
                    .map(String::from)
                    .to_vec(),
                pageblock_order: Some(9),
                ..HostMemory::default()
            },
            ..HostFacts::default()
        },
        fault_time_split: true,
    }
}

pub(crate) fn first_interval() -> IntervalSample {
    let mut postgres = process(100, "postgres");
    postgres.faults = vec![faults(FaultClass::Minor, &[500, 1000, 1500, 2000])];
    let mut redis = process(200, "redis");
    redis.faults = vec![faults(FaultClass::Minor, &[1000, 1000, 1000])];
    redis.stalls = vec![stall(
        StallKind::Compaction,
        &[2 * MS],
        0,
        &[(9, GFP_HIGHUSER_MOVABLE | GFP_COMP, 1)],
    )];
    IntervalSample {
        index: 0,
        start_ns: START,
        end_ns: START + S,
        machine: machine(1, 0, 0, 0, 0),
        processes: vec![postgres, redis],
        stall_time: vec![StallTime {
            interval: 0,
            pid: 200,
            start_ns: 0,
            ns: vec![(StallCategory::Compaction, 2 * MS)],
        }],
        kswapd: vec![KswapdSample {
            nid: 0,
            wakes: 1,
            awake_ns: vec![(0, 50 * MS)],
            cpu_ns: Some(7 * MS),
            woken_by: Vec::new(),
            wake_zones: vec![KswapdWake {
                zid: 3,
                order: 9,
                count: 1,
            }],
        }],
        cgroups: vec![CgroupName {
            id: 501,
            path: Some("/db.slice".into()),
            memory_limit_bytes: Some(1 << 30),
        }],
        fault_records: 7,
        allocator: AllocatorEvents {
            extfrag_by_order: Vec::new(),
            compaction_attempts: 2,
            ..AllocatorEvents::default()
        },
        memory: MemoryInterval {
            read_ns: START + S,
            readings: vec![
                memory_reading(100, "postgres", 200 * 1024),
                memory_reading(200, "redis", 50 * 1024),
            ],
            ..MemoryInterval::default()
        },
        ..IntervalSample::default()
    }
}

/// A process's memory: `anon_kb` of anonymous memory and 8 MiB of file pages.
fn memory_reading(pid: u32, comm: &str, anon_kb: u64) -> MemoryReading {
    MemoryReading {
        pid,
        start_ns: 0,
        comm: comm.into(),
        memcg_id: 501,
        rss_anon_kb: anon_kb,
        rss_file_kb: 8 * 1024,
        ..MemoryReading::default()
    }
}

pub(crate) fn second_interval() -> IntervalSample {
    let mut postgres = process(100, "postgres");
    postgres.faults = vec![
        faults(FaultClass::MajorFile, &[3 * MS, 3 * MS]),
        faults(FaultClass::MajorSwap, &[250_000]),
    ];
    postgres.swapin_pages = 8;
    postgres.stalls = vec![
        stall(
            StallKind::MemcgReclaim,
            &[40 * MS, 60 * MS, 100 * MS],
            64,
            &[(0, GFP_KERNEL, 1), (2, GFP_HIGHUSER_MOVABLE, 2)],
        ),
        stall(
            StallKind::DirectReclaim,
            &[30 * MS],
            10,
            &[(2, GFP_KERNEL, 1)],
        ),
    ];
    let mut cron = process(300, "cron");
    cron.faults = vec![faults(FaultClass::Minor, &[700])];
    IntervalSample {
        index: 1,
        start_ns: START + S,
        end_ns: START + 2 * S,
        machine: machine(2, 300_000, 100_000, 50, 1500),
        processes: vec![postgres, cron],
        stall_time: vec![StallTime {
            interval: 1,
            pid: 100,
            start_ns: 0,
            ns: vec![
                (StallCategory::DirectReclaim, 30 * MS),
                (StallCategory::MemcgReclaim, 200 * MS),
            ],
        }],
        kswapd: vec![KswapdSample {
            nid: 0,
            wakes: 3,
            awake_ns: vec![(1, 150 * MS)],
            cpu_ns: Some(21 * MS),
            woken_by: vec![waker(200, "redis", 3, 2), waker(100, "postgres", 0, 5)],
            wake_zones: vec![KswapdWake {
                zid: 3,
                order: 0,
                count: 5,
            }],
        }],
        swap_by_task: vec![
            SwapByTask {
                pid: 100,
                comm: "postgres".into(),
                out_pages: 300,
                in_pages: 50,
            },
            SwapByTask {
                pid: 90,
                comm: "kswapd0".into(),
                out_pages: 1200,
                in_pages: 0,
            },
            SwapByTask {
                pid: 200,
                comm: "redis".into(),
                out_pages: 0,
                in_pages: 10,
            },
        ],
        swap_by_memcg: vec![
            SwapByMemcg {
                memcg_id: 999,
                out_pages: 100,
                in_pages: 10,
            },
            SwapByMemcg {
                memcg_id: 501,
                out_pages: 1400,
                in_pages: 50,
            },
        ],
        oom: crate::samples::oom::OomInterval {
            kills: vec![sample(kill_event())],
            ..Default::default()
        },
        fault_records: 4,
        allocator: AllocatorEvents {
            extfrag_by_order: vec![3, 0, 0, 1, 0, 0, 0, 0, 0, 2],
            compaction_attempts: 0,
            kcompactd_wakes: 1,
            kcompactd_cpu_ns: Some(3 * MS),
        },
        counters: counters(),
        // postgres grew by 512 KiB (too little for a growth chart).
        memory: MemoryInterval {
            read_ns: START + 2 * S,
            readings: vec![memory_reading(100, "postgres", 200 * 1024 + 512)],
            ..MemoryInterval::default()
        },
        ..IntervalSample::default()
    }
}

pub(crate) fn intervals() -> Vec<IntervalSample> {
    vec![first_interval(), second_interval()]
}

pub(crate) fn end() -> End {
    End {
        stop: StopReason::Duration,
        elapsed_ns: 2 * S,
        counters: counters(),
    }
}

/// The model of `samples` (and `end`, if any) under the fixture's header.
pub(crate) fn model_of(samples: &[IntervalSample], end: Option<&End>) -> Model {
    let mut model = Model::new(header());
    for sample in samples {
        model.apply(sample);
    }
    if let Some(end) = end {
        model.finish(end);
    }
    model
}

/// The whole recording, folded.
pub(crate) fn model() -> Model {
    model_of(&intervals(), Some(&end()))
}

/// The report of the whole recording, every process in it.
pub(crate) fn report() -> Report {
    Report::new(&model(), &View::default())
}

/// The tick of the last interval folded into `model`.
pub(crate) fn tick<'a>(model: &'a Model, sample: &'a IntervalSample, lost_faults: u64) -> Tick<'a> {
    Tick {
        elapsed: Duration::from_nanos(sample.end_ns - START),
        interval: Duration::from_nanos(sample.end_ns - sample.start_ns),
        sample,
        lost_faults,
        model,
    }
}

/// What `render` writes, as text.
pub(crate) fn render(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    render(&mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("renderers write UTF-8")
}

/// The whitespace-separated words of the first line that starts with `prefix` (after
/// leading spaces), or of none.
pub(crate) fn words_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .find(|line| line.trim_start().starts_with(prefix))
        .map(|line| line.split_whitespace().collect())
        .unwrap_or_default()
}

/// Where and why `document` breaks the JSON Schema `schema` (compiled as draft 2020-12, which
/// also checks it against the draft's meta-schema); empty when it does not.
pub(crate) fn schema_errors(schema: &str, document: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(schema).expect("the schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema");
    validator
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
