//! The report model and its renderers. `Report` is built once from a recording; every output
//! (terminal table, log2 bars, JSON) is a function of it that writes to `&mut impl Write`.
pub mod bars;
pub mod events;
pub mod gfp;
pub mod json;
pub mod live;
pub mod stalls;
pub mod table;
pub mod timeline;
pub mod units;

use memtrace_common::{EventKind, FaultClass};

use crate::{
    collect::{
        loader::{HookStatus, KernelCounters},
        session::{Recording, StopReason},
    },
    model::{LatencyStats, LatencySummary, Log2Bucket, ProcessFaults, machine::Thresholds},
    oom::OomKill,
};
use gfp::GfpNames;
use stalls::{KswapdReport, StallsReport, SwapReport};
use timeline::TimelineRow;

/// What a report needs besides the recording.
pub struct ReportContext<'a> {
    /// What was traced, in words.
    pub traced: String,
    /// Pids the timeline focuses on (empty: the most stalled of each interval).
    pub focus: &'a [u32],
    /// When a timeline interval is flagged.
    pub thresholds: Thresholds,
    /// gfp flag names of the running kernel.
    pub gfp: &'a GfpNames,
    /// Resolves a memory cgroup's inode to its path.
    pub memcg_path: &'a dyn Fn(u64) -> Option<String>,
}

/// Version tag of the JSON document (see docs/json-schema.md).
pub const SCHEMA: &str = "memtrace.report/1";

/// Short, stable names of the fault classes, as used in JSON and tables.
pub fn class_name(class: FaultClass) -> &'static str {
    match class {
        FaultClass::Minor => "minor",
        FaultClass::MajorFile => "major_file",
        FaultClass::MajorSwap => "swap_in",
    }
}

/// Everything a recording found, ready to render.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub memtrace_version: &'static str,
    /// `uname -r`.
    pub kernel: String,
    /// What was traced, in words.
    pub traced: String,
    pub duration_s: f64,
    pub stop_reason: StopReason,
    /// Fault records received.
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
    /// When timeline intervals are flagged.
    pub thresholds: Thresholds,
    /// One row per interval.
    pub timeline: Vec<TimelineRow>,
    /// Every OOM kill on the machine during the recording, whatever was traced, in order.
    pub oom_kills: Vec<OomKill>,
}

/// Lost records by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics {
    /// Fault completions whose start was not seen (faults already in flight at start-up).
    pub unmatched_ends: u64,
    /// Faults whose task slept or was preempted mid-fault.
    pub parked: u64,
    /// Parked faults that did not fit in the parking map (their latency is lost).
    pub park_failed: u64,
    /// Child processes added to the filter by `--children`.
    pub children_added: u64,
    /// `oom:mark_victim` on tasks that were exiting anyway: no kill happened.
    pub oom_marks_without_kill: u64,
}

/// One process.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProcessReport {
    pub pid: u32,
    pub comm: String,
    pub faults: u64,
    pub fault_time_ns: u64,
    /// Pages read back from swap during its faults (readahead included).
    pub swapin_pages: u64,
    pub classes: ClassesReport,
    /// Time in reclaim and compaction stalls.
    pub stall_time_ns: u64,
    pub stalls: StallsReport,
}

/// The three fault classes.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ClassesReport {
    pub minor: ClassReport,
    pub major_file: ClassReport,
    pub swap_in: ClassReport,
}

impl ClassesReport {
    /// The classes in display order with their names.
    pub fn iter(&self) -> [(FaultClass, &ClassReport); 3] {
        [
            (FaultClass::Minor, &self.minor),
            (FaultClass::MajorFile, &self.major_file),
            (FaultClass::MajorSwap, &self.swap_in),
        ]
    }

    fn from_stats(stats: [Option<&LatencyStats>; 3]) -> Self {
        let [minor, major_file, swap_in] = stats.map(ClassReport::from_stats);
        Self {
            minor,
            major_file,
            swap_in,
        }
    }
}

/// One class of one process: summary and log2 distribution.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ClassReport {
    #[serde(flatten)]
    pub latency: LatencySummary,
    pub log2_buckets: Vec<Log2Bucket>,
}

impl ClassReport {
    fn from_stats(stats: Option<&LatencyStats>) -> Self {
        stats.map_or_else(Self::default, |s| Self {
            latency: s.summary(),
            log2_buckets: s.log2_buckets(),
        })
    }
}

impl Report {
    /// Builds the report of a recording.
    pub fn new(recording: &Recording, context: &ReportContext<'_>) -> Self {
        let model = &recording.model;
        let mut processes: Vec<&ProcessFaults> = model.processes().collect();
        let busy = |p: &ProcessFaults| p.total_ns() + p.stall_ns();
        processes.sort_by(|a, b| busy(b).cmp(&busy(a)).then(a.pid.cmp(&b.pid)));
        let total = merge_all(&processes);
        Self {
            schema: SCHEMA,
            memtrace_version: env!("CARGO_PKG_VERSION"),
            kernel: kernel_release(),
            traced: context.traced.clone(),
            duration_s: recording.elapsed.as_secs_f64(),
            stop_reason: recording.stop,
            faults: model.records,
            lost: lost(&recording.counters),
            malformed: model.decode_errors,
            kernel_counters: Diagnostics {
                oom_marks_without_kill: model.oom.marks_without_kill,
                ..diagnostics(&recording.counters)
            },
            hooks: recording.hooks.clone(),
            total: ClassesReport::from_stats([0, 1, 2].map(|i| total[i].as_ref())),
            processes: processes
                .iter()
                .map(|p| process_report(p, context.gfp))
                .collect(),
            swap: SwapReport::new(&model.swap, context.memcg_path),
            kswapd: stalls::kswapd_reports(&model.kswapd),
            thresholds: context.thresholds,
            timeline: timeline::rows(model, &context.thresholds, context.focus),
            oom_kills: model.oom.kills.clone(),
        }
    }
}

fn process_report(p: &ProcessFaults, gfp: &GfpNames) -> ProcessReport {
    ProcessReport {
        pid: p.pid,
        comm: p.comm.clone(),
        faults: p.total_count(),
        fault_time_ns: p.total_ns(),
        swapin_pages: p.swapin_pages,
        classes: ClassesReport::from_stats(FaultClass::ALL.map(|c| p.class(c))),
        stall_time_ns: p.stall_ns(),
        stalls: StallsReport::of(p, gfp),
    }
}

/// The distributions of all processes merged, per class.
fn merge_all(processes: &[&ProcessFaults]) -> [Option<LatencyStats>; 3] {
    let mut merged: [Option<LatencyStats>; 3] = Default::default();
    for process in processes {
        for class in FaultClass::ALL {
            if let Some(stats) = process.class(class) {
                merged[class as usize]
                    .get_or_insert_with(LatencyStats::new)
                    .merge(stats);
            }
        }
    }
    merged
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
        oom_marks_without_kill: 0,
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
