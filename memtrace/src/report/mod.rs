//! The report and its renderers. `Report` is built from a model (of a live run or of a
//! recording); every output (terminal table, bars, stalls, timeline, OOM blocks, JSON) is a
//! function that writes to `&mut impl Write` and does no other I/O.
pub mod bars;
pub mod diff;
#[cfg(test)]
mod escape_tests;
pub mod events;
pub mod files;
#[cfg(test)]
pub(crate) mod fixture;
pub mod gfp;
pub mod growth;
pub mod hlog;
pub mod html;
pub mod json;
pub mod live;
pub mod metrics;
pub mod oom;
pub mod stacks;
pub mod stalls;
pub mod table;
pub mod timeline;
pub mod units;
pub mod verdict;

use memtrace_common::{EventKind, FAULT_CLASSES, FaultClass};
use serde::{Deserialize, Serialize};

use crate::{
    model::{LatencyStats, LatencySummary, Log2Bucket, Model, ProcessFaults, oom::OomKill},
    samples::{
        Header, HookStatus, KernelCounters, StopReason, TimeSplit,
        host::{HostMemory, Tunables},
        machine::Thresholds,
        zones::AllocatorEvents,
    },
};
use gfp::GfpNames;
use stalls::{KswapdReport, StallsReport, SwapReport};
use timeline::TimelineRow;

/// Which part of a recording a report shows.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// Only these processes (and the timeline focused on them); `None`: the recording's own
    /// focus (its `--pid` list, or every process).
    pub pids: Option<Vec<u32>>,
}

/// Version tag of the JSON document (see docs/json-schema.md).
pub const SCHEMA: &str = "memtrace.report/1";

/// Everything a recording found, ready to render.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// The memtrace that recorded it.
    pub memtrace_version: String,
    /// `uname -r` of the recorded machine.
    pub kernel: String,
    /// The vm tunables when recording started.
    pub tunables: Tunables,
    /// What was traced, in words.
    pub traced: String,
    pub duration_s: f64,
    pub stop_reason: StopReason,
    /// Faults received: every process's `faults` and `untimed_faults` together.
    pub faults: u64,
    /// Records lost because the ring buffer was full (never silently dropped).
    pub lost: LostReport,
    /// Records that did not decode.
    pub malformed: u64,
    /// Kernel-side diagnostics.
    pub kernel_counters: Diagnostics,
    /// Every hook, attached or not.
    pub hooks: Vec<HookStatus>,
    /// All processes together.
    pub total: ClassesReport,
    /// Per process, most time in faults and stalls first.
    pub processes: Vec<ProcessReport>,
    /// Swap traffic, machine-wide.
    pub swap: SwapReport,
    /// kswapd per NUMA node.
    pub kswapd: Vec<KswapdReport>,
    /// The page allocator's fallbacks between migrate types and the direct-compaction
    /// attempts.
    #[serde(default)]
    pub allocator: AllocatorReport,
    /// When timeline intervals are flagged.
    pub thresholds: Thresholds,
    /// One row per interval.
    pub timeline: Vec<TimelineRow>,
    /// Why reclaim ran, for each flagged interval whose facts say (see `verdict`).
    #[serde(default)]
    pub verdicts: Vec<verdict::Verdict>,
    /// Every OOM kill on the machine during the recording, whatever was traced, in order.
    pub oom_kills: Vec<OomKill>,
    /// Each traced process's memory over the recording: slope, fit, steady growth, forecast.
    #[serde(default)]
    pub growth: growth::GrowthReport,
    /// Major faults by the file they read.
    #[serde(default)]
    pub files: files::FilesReport,
    /// Where the pages faults brought in came from (`record --stacks`).
    #[serde(default)]
    pub stacks: stacks::StacksReport,
}

/// The page allocator's events over the recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocatorReport {
    /// `mm_page_alloc_extfrag` events machine-wide: allocations that took a free block of
    /// another migrate type; by the order of the block taken (the last entry counts larger
    /// orders too).
    pub extfrag: u64,
    pub extfrag_by_order: Vec<u64>,
    /// Of those, blocks smaller than a pageblock (`pageblock_order`): each mixes migrate
    /// types inside a pageblock, the fragmentation that makes high-order allocations fail
    /// later (the event's `fragmenting`).
    pub extfrag_fragmenting: u64,
    pub pageblock_order: Option<u32>,
    /// Direct-compaction attempts of the traced tasks, skipped ones included (each process's
    /// `compaction` stalls count the attempts that were not skipped, as `compact_stall` does).
    pub compaction_attempts: u64,
    /// kcompactd's runs (woken by kswapd to compact for a high order) and CPU time, all nodes
    /// (`null` in recordings made before memtrace measured it). Its proactive compaction,
    /// every 500 ms when `vm.compaction_proactiveness` is above 0, shows only in the CPU time.
    pub kcompactd_wakes: u64,
    pub kcompactd_cpu_ns: Option<u64>,
}

impl AllocatorReport {
    fn new(events: &AllocatorEvents, memory: &HostMemory) -> Self {
        // x86-64's pageblock order, when a recording does not say.
        let pageblock_order = memory.pageblock_order.unwrap_or(9);
        Self {
            extfrag: events.extfrag(),
            extfrag_by_order: events.extfrag_by_order.clone(),
            extfrag_fragmenting: events.fragmenting(pageblock_order),
            pageblock_order: memory.pageblock_order,
            compaction_attempts: events.compaction_attempts,
            kcompactd_wakes: events.kcompactd_wakes,
            kcompactd_cpu_ns: events.kcompactd_cpu_ns,
        }
    }
}

/// Lost records by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostReport {
    pub faults: u64,
    pub stalls: u64,
    pub swap: u64,
    pub kswapd: u64,
    /// OOM kill and aftermath records.
    pub oom: u64,
    pub total: u64,
}

/// Kernel-side diagnostics that explain gaps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Fault completions whose start was not seen: faults in flight when the hooks were
    /// attached or detached, at the perf end hook. (Faults that have no start, taken through
    /// get_user_pages, are each process's `untimed_faults`.)
    pub unmatched_ends: u64,
    /// Faults whose thread left the CPU mid-fault (slept or was preempted).
    pub parked: u64,
    /// Faults whose in-flight slot another thread took before they ended (their latency is
    /// lost); possible only where pid_max exceeds the slot count, 65 536.
    pub park_failed: u64,
    /// Child processes added to the filter by `--children`.
    pub children_added: u64,
    /// Children that did not fit in the full pid filter: untraced.
    #[serde(default)]
    pub children_dropped: u64,
    /// Stalls whose start did not fit in the full in-flight map: untimed.
    #[serde(default)]
    pub stalls_dropped: u64,
    /// `oom:mark_victim` on tasks that were exiting anyway: no kill happened.
    pub oom_marks_without_kill: u64,
}

/// One process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Thread group id; 0 for an entry of folded processes.
    pub pid: u32,
    pub comm: String,
    /// When it started, in seconds from the start of the recording (negative: before it);
    /// `null` when unknown or for folded processes. With `pid`, the process's identity.
    pub start_s: Option<f64>,
    /// It ended during the recording.
    pub exited: bool,
    /// Ended processes folded into this entry (0: a process of its own); see `comm`.
    pub folded_processes: u64,
    pub faults: u64,
    pub fault_time_ns: u64,
    /// Pages read back from swap during its faults (readahead included).
    pub swapin_pages: u64,
    /// Faults taken for it without a CPU exception, through get_user_pages (execve copying
    /// its arguments, `MAP_POPULATE`, mlock, `MADV_POPULATE_*`): in its minflt, but with no
    /// start to time, so in no class. `faults` + this = the kernel's minflt + majflt.
    #[serde(default)]
    pub untimed_faults: u64,
    pub classes: ClassesReport,
    /// Time in reclaim and compaction stalls.
    pub stall_time_ns: u64,
    pub stalls: StallsReport,
}

/// The fault classes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClassesReport {
    pub minor: ClassReport,
    /// Transparent huge page faults (minor to the kernel).
    #[serde(default)]
    pub thp: ClassReport,
    pub major_file: ClassReport,
    pub swap_in: ClassReport,
}

impl ClassesReport {
    /// The classes in display order with their names.
    pub fn iter(&self) -> [(FaultClass, &ClassReport); FAULT_CLASSES] {
        [
            (FaultClass::Minor, &self.minor),
            (FaultClass::Thp, &self.thp),
            (FaultClass::MajorFile, &self.major_file),
            (FaultClass::MajorSwap, &self.swap_in),
        ]
    }

    /// From the stats and splits of every class (indexed by `FaultClass as usize`).
    fn new(
        stats: [Option<&LatencyStats>; FAULT_CLASSES],
        splits: &[TimeSplit; FAULT_CLASSES],
        split_known: bool,
    ) -> Self {
        let class = |c: FaultClass| {
            let split = split_known.then_some(&splits[c as usize]);
            ClassReport::new(stats[c as usize], split)
        };
        Self {
            minor: class(FaultClass::Minor),
            thp: class(FaultClass::Thp),
            major_file: class(FaultClass::MajorFile),
            swap_in: class(FaultClass::MajorSwap),
        }
    }
}

/// One class of one process: summary, where the time went, and log2 distribution.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClassReport {
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// The total split three ways: running on a CPU, waiting runnable for one (preempted or
    /// just woken), and blocked (asleep: waiting for I/O, a page under I/O, a lock). `null`
    /// in recordings made before memtrace measured it.
    #[serde(default)]
    pub on_cpu_ns: Option<u64>,
    #[serde(default)]
    pub waiting_ns: Option<u64>,
    #[serde(default)]
    pub blocked_ns: Option<u64>,
    pub log2_buckets: Vec<Log2Bucket>,
}

impl ClassReport {
    fn new(stats: Option<&LatencyStats>, split: Option<&TimeSplit>) -> Self {
        let Some(stats) = stats else {
            let zero = split.map(|_| 0);
            return Self {
                on_cpu_ns: zero,
                waiting_ns: zero,
                blocked_ns: zero,
                ..Self::default()
            };
        };
        let total = stats.total_ns();
        Self {
            latency: stats.summary(),
            on_cpu_ns: split.map(|s| total.saturating_sub(s.off_cpu_ns)),
            waiting_ns: split.map(|s| s.waiting_ns),
            blocked_ns: split.map(TimeSplit::blocked_ns),
            log2_buckets: stats.log2_buckets(),
        }
    }
}

impl Report {
    /// Builds the report of a model (a live run's or a recording's).
    pub fn new(model: &Model, view: &View) -> Self {
        let header = &model.header;
        let focus: &[u32] = view.pids.as_deref().unwrap_or(&header.focus_pids);
        let mut processes: Vec<&ProcessFaults> = model
            .processes()
            .filter(|p| {
                view.pids
                    .as_ref()
                    .is_none_or(|pids| p.folded == 0 && pids.contains(&p.pid))
            })
            .collect();
        let busy = |p: &ProcessFaults| p.total_ns() + p.stall_ns();
        processes.sort_by(|a, b| {
            busy(b)
                .cmp(&busy(a))
                .then(a.pid.cmp(&b.pid))
                .then(a.start_ns.cmp(&b.start_ns))
                .then(a.comm.cmp(&b.comm))
        });
        let (total, total_splits) = merge_all(&processes);
        let gfp = GfpNames::from_enum(header.host.gfp_bits.iter().map(|(n, b)| (n.as_str(), *b)));
        Self {
            schema: SCHEMA.to_string(),
            memtrace_version: header.memtrace_version.clone(),
            kernel: header.host.kernel_release.clone(),
            tunables: header.host.tunables.clone(),
            traced: header.traced.clone(),
            duration_s: model.elapsed_ns() as f64 / 1e9,
            stop_reason: model.stop_reason(),
            faults: model.records,
            lost: lost(&model.counters),
            malformed: model.malformed,
            kernel_counters: Diagnostics {
                oom_marks_without_kill: model.oom.marks_without_kill,
                ..diagnostics(&model.counters)
            },
            hooks: header.hooks.clone(),
            total: ClassesReport::new(
                total.each_ref().map(Option::as_ref),
                &total_splits,
                header.fault_time_split,
            ),
            processes: processes
                .iter()
                .map(|p| process_report(p, &gfp, header))
                .collect(),
            swap: SwapReport::new(&model.swap, |id| {
                let cgroup = model.cgroups.get(&id);
                (
                    cgroup.and_then(|c| c.path.clone()),
                    cgroup.and_then(|c| c.memory_limit_bytes),
                )
            }),
            kswapd: stalls::kswapd_reports(&model.kswapd, &header.host.memory),
            allocator: AllocatorReport::new(&model.allocator, &header.host.memory),
            thresholds: timeline::shown_thresholds(header.thresholds),
            verdicts: Vec::new(),
            timeline: timeline::rows(model, &header.thresholds, focus),
            oom_kills: model.oom.kills.clone(),
            growth: growth::GrowthReport::new(model, view.pids.as_deref()),
            files: files::FilesReport::new(&model.files),
            stacks: stacks::StacksReport::new(&model.stacks, header.host.memory.page_size),
        }
        .with_verdicts(&header.host.memory)
    }
}

impl Report {
    /// Fills `verdicts` from the timeline, the tunables and the recorded machine's memory.
    fn with_verdicts(mut self, memory: &HostMemory) -> Self {
        self.verdicts = verdict::verdicts(&self.timeline, &self.tunables, memory);
        self
    }
}

fn process_report(p: &ProcessFaults, gfp: &GfpNames, header: &Header) -> ProcessReport {
    let origin_ns = header.start_mono_ns;
    ProcessReport {
        pid: p.pid,
        comm: p.comm.clone(),
        start_s: (p.start_ns > 0 && p.folded == 0)
            .then(|| (p.start_ns as f64 - origin_ns as f64) / 1e9),
        exited: p.exit_ns.is_some(),
        folded_processes: p.folded,
        faults: p.total_count(),
        fault_time_ns: p.total_ns(),
        swapin_pages: p.swapin_pages,
        untimed_faults: p.untimed_faults,
        classes: ClassesReport::new(
            FaultClass::ALL.map(|c| p.class(c)),
            &p.splits,
            header.fault_time_split,
        ),
        stall_time_ns: p.stall_ns(),
        stalls: StallsReport::of(p, gfp, &header.host.memory),
    }
}

/// The distributions and splits of all processes merged, per class.
fn merge_all(
    processes: &[&ProcessFaults],
) -> (
    [Option<LatencyStats>; FAULT_CLASSES],
    [TimeSplit; FAULT_CLASSES],
) {
    let mut merged: [Option<LatencyStats>; FAULT_CLASSES] = Default::default();
    let mut splits = [TimeSplit::default(); FAULT_CLASSES];
    for process in processes {
        for class in FaultClass::ALL {
            if let Some(stats) = process.class(class) {
                merged[class as usize]
                    .get_or_insert_with(LatencyStats::new)
                    .merge(stats);
            }
            splits[class as usize].add(&process.splits[class as usize]);
        }
    }
    (merged, splits)
}

/// Lost-record totals from the kernel counters.
pub fn lost(counters: &KernelCounters) -> LostReport {
    LostReport {
        faults: counters.lost[EventKind::Fault as usize],
        stalls: counters.lost[EventKind::Stall as usize],
        swap: counters.lost[EventKind::Swap as usize],
        kswapd: counters.lost[EventKind::Kswapd as usize],
        oom: counters.lost[EventKind::OomKill as usize]
            + counters.lost[EventKind::OomAftermath as usize],
        total: counters.lost.iter().sum(),
    }
}

fn diagnostics(counters: &KernelCounters) -> Diagnostics {
    Diagnostics {
        unmatched_ends: counters.unmatched_ends,
        parked: counters.parked,
        park_failed: counters.park_failed,
        children_added: counters.children_added,
        children_dropped: counters.children_dropped,
        stalls_dropped: counters.stalls_dropped,
        oom_marks_without_kill: 0,
    }
}
