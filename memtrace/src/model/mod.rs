//! The model: a pure fold of samples. [`Model::apply`] adds one interval, [`Model::finish`] the
//! end; the live run and a replayed recording fold the same samples, so every view they render
//! is the same. Nothing here reads the machine or prints.
//!
//! A process is its pid and its start time (the kernel reuses pids). Memory stays bounded
//! whatever the churn: the [`KEEP_EXITED`] busiest ended processes are kept one by one, the
//! others are folded into one entry per command (at most [`KEEP_COMMANDS`], then one for the
//! rest), so every fault and stall still counts, in exact totals and distributions.
pub mod diff;
pub mod files;
pub mod growth;
pub mod machine;
pub mod oom;
pub mod stacks;
pub mod swap;
pub mod timeline;

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use machine::MachineInterval;
use memtrace_common::{FAULT_CLASSES, FaultClass, StallKind};
pub use swap::{Kswapd, SwapTraffic};
use timeline::Timeline;

use crate::samples::{
    CgroupName, End, Header, IntervalSample, KernelCounters, ProcessSample, StallCategory,
    StallSample, StopReason, TimeSplit,
    machine::MachineSample,
    stall_kinds::StallKinds,
    zones::{AllocatorEvents, StallZones},
};
pub use crate::samples::{LatencyStats, LatencySummary, Log2Bucket, SIGNIFICANT_DIGITS};

/// Stalls of one kind in one process.
#[derive(Clone, Debug, Default)]
pub struct StallStats {
    /// Count, total and distribution of the stall latency.
    pub latency: LatencyStats,
    /// Pages reclaimed during these stalls.
    pub pages: u64,
    /// How many stalls each (order, gfp flags) of allocation caused, and the zones as they
    /// began.
    pub allocations: BTreeMap<(i32, u32), (u64, StallZones)>,
    /// Direct compaction: zones compacted during the attempts, attempts that succeeded and
    /// attempts whose every zone was deferred.
    pub zone_runs: u64,
    pub succeeded: u64,
    pub deferred: u64,
}

impl StallStats {
    fn merge(&mut self, sample: &StallSample) {
        self.latency.merge_compact(&sample.latency);
        self.pages += sample.pages;
        self.add_outcomes(sample.zone_runs, sample.succeeded, sample.deferred);
        for a in &sample.allocations {
            self.add_allocation((a.order, a.gfp_flags), a.count, &a.zones);
        }
    }

    /// Takes in another process's stalls of the same kind (folding ended processes).
    fn absorb(&mut self, other: &StallStats) {
        self.latency.merge_compact(&other.latency);
        self.pages += other.pages;
        self.add_outcomes(other.zone_runs, other.succeeded, other.deferred);
        for (shape, (count, zones)) in &other.allocations {
            self.add_allocation(*shape, *count, zones);
        }
    }

    fn add_allocation(&mut self, shape: (i32, u32), count: u64, zones: &StallZones) {
        let (mine, mine_zones) = self.allocations.entry(shape).or_default();
        *mine += count;
        mine_zones.merge(zones);
    }

    fn add_outcomes(&mut self, zone_runs: u64, succeeded: u64, deferred: u64) {
        self.zone_runs += zone_runs;
        self.succeeded += succeeded;
        self.deferred += deferred;
    }

    /// The zones as all these stalls began.
    pub fn zones(&self) -> StallZones {
        let mut all = StallZones::default();
        for (_, zones) in self.allocations.values() {
            all.merge(zones);
        }
        all
    }
}

/// Ended processes kept one by one; the less busy ones are folded by command.
pub const KEEP_EXITED: usize = 100;
/// Commands whose folded processes keep an entry of their own.
pub const KEEP_COMMANDS: usize = 64;
/// The name of the entry that holds folded processes of every other command.
pub const OTHER_COMMANDS: &str = "(other commands)";

/// Faults and stalls of one process, or of ended processes folded together.
#[derive(Clone, Debug)]
pub struct ProcessFaults {
    /// Thread group id (0 for folded processes).
    pub pid: u32,
    /// When it started (CLOCK_MONOTONIC ns; 0: unknown or folded).
    pub start_ns: u64,
    /// When it ended, if it has.
    pub exit_ns: Option<u64>,
    /// Ended processes folded into this entry (0: a process of its own).
    pub folded: u64,
    /// The name of its main thread (or of the first thread seen).
    pub comm: String,
    /// Per class (indexed by `FaultClass as usize`); `None` until the first fault of the class.
    pub classes: [Option<LatencyStats>; FAULT_CLASSES],
    /// Per class, where the time went.
    pub splits: [TimeSplit; FAULT_CLASSES],
    /// Pages read back from swap during this process's faults.
    pub swapin_pages: u64,
    /// Faults taken without a CPU exception (get_user_pages: execve's arguments,
    /// `MAP_POPULATE`, mlock, `MADV_POPULATE_*`): in minflt, but never timed.
    pub untimed_faults: u64,
    /// Reclaim and compaction stalls, per kind.
    stalls: StallKinds<StallStats>,
}

impl ProcessFaults {
    /// A process with nothing recorded yet.
    pub fn new(pid: u32, start_ns: u64) -> Self {
        Self {
            pid,
            start_ns,
            exit_ns: None,
            folded: 0,
            comm: String::new(),
            classes: Default::default(),
            splits: Default::default(),
            swapin_pages: 0,
            untimed_faults: 0,
            stalls: Default::default(),
        }
    }

    /// The stalls of one kind, if any.
    pub fn stall(&self, kind: StallKind) -> Option<&StallStats> {
        self.stalls.get(kind)
    }

    /// Time spent in reclaim and compaction stalls.
    pub fn stall_ns(&self) -> u64 {
        self.stalls.iter().map(|(_, s)| s.latency.total_ns()).sum()
    }

    /// The stats of one class, if it saw any fault.
    pub fn class(&self, class: FaultClass) -> Option<&LatencyStats> {
        self.classes[class as usize].as_ref()
    }

    /// Faults of every class.
    pub fn total_count(&self) -> u64 {
        self.classes.iter().flatten().map(LatencyStats::count).sum()
    }

    /// Time spent in faults of every class.
    pub fn total_ns(&self) -> u64 {
        self.classes
            .iter()
            .flatten()
            .map(LatencyStats::total_ns)
            .sum()
    }

    /// Time in faults and stalls: what ranks processes.
    pub fn busy_ns(&self) -> u64 {
        self.total_ns() + self.stall_ns()
    }

    /// Adds one interval of this process. Unknown class or kind ids are counted by the caller.
    fn merge(&mut self, sample: &ProcessSample) -> u64 {
        let mut unknown = 0;
        if sample.exit_ns.is_some() {
            self.exit_ns = sample.exit_ns;
        }
        if !sample.comm.is_empty() && (sample.named || self.comm.is_empty()) {
            self.comm.clone_from(&sample.comm);
        }
        for class in &sample.faults {
            match FaultClass::try_from(class.class) {
                Ok(c) => {
                    self.classes[c as usize]
                        .get_or_insert_with(LatencyStats::new)
                        .merge_compact(&class.latency);
                    self.splits[c as usize].add(&class.split);
                }
                Err(_) => unknown += 1,
            }
        }
        self.swapin_pages += sample.swapin_pages;
        self.untimed_faults += sample.untimed_faults;
        for stall in &sample.stalls {
            match StallKind::try_from(stall.kind) {
                Ok(k) => self.stalls.get_or_default(k).merge(stall),
                Err(_) => unknown += 1,
            }
        }
        unknown
    }
}

impl ProcessFaults {
    /// Folds an ended process into this entry: its distributions merge, its counts add.
    fn absorb(&mut self, other: &Self) {
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            if let Some(theirs) = theirs {
                mine.get_or_insert_with(LatencyStats::new)
                    .merge_compact(theirs);
            }
        }
        for (mine, theirs) in self.splits.iter_mut().zip(&other.splits) {
            mine.add(theirs);
        }
        for (kind, theirs) in other.stalls.iter() {
            self.stalls.get_or_default(kind).absorb(theirs);
        }
        self.swapin_pages += other.swapin_pages;
        self.untimed_faults += other.untimed_faults;
        self.folded += other.folded.max(1);
        self.exit_ns = self.exit_ns.max(other.exit_ns);
    }
}

/// Everything folded so far.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// The recording's header, as is.
    pub header: Header,
    /// Processes by (pid, start time).
    processes: HashMap<(u32, u64), ProcessFaults>,
    /// Ended processes folded by command.
    folded: BTreeMap<String, ProcessFaults>,
    /// Pids whose timeline entries are always kept (the traced or reported ones).
    pub focus: Vec<u32>,
    /// Per-interval stalled time and kswapd time.
    pub timeline: Timeline,
    /// The machine during each interval (same order as the timeline's).
    pub machine: Vec<MachineInterval>,
    last_machine: MachineSample,
    /// Swap traffic by task and memory cgroup.
    pub swap: SwapTraffic,
    /// kswapd per node.
    pub kswapd: Kswapd,
    /// The allocator's fallbacks and the compaction attempts, all intervals.
    pub allocator: AllocatorEvents,
    /// Memory cgroup paths by inode, as recorded.
    pub cgroups: HashMap<u64, CgroupName>,
    /// Fault records received.
    pub records: u64,
    /// Records that did not decode (or sample entries of an unknown kind), and the first reason.
    pub malformed: u64,
    pub first_malformed: Option<String>,
    /// OOM kills.
    pub oom: oom::OomLog,
    /// Each traced process's memory over the recording.
    pub growth: growth::Growth,
    /// Major faults by file.
    pub files: files::FileLog,
    /// Pages brought in by faults, by stack (`record --stacks`).
    pub stacks: stacks::StackLog,
    /// Kernel-side counters as of the last interval (or the end).
    pub counters: KernelCounters,
    /// CLOCK_MONOTONIC end of the last interval folded.
    pub last_end_ns: u64,
    /// How the recording ended; `None` while it runs or when the file has no end.
    pub end: Option<End>,
    /// Some intervals were left out (a report's time window): the duration is the kept ones'.
    pub windowed: bool,
}

impl Model {
    /// An empty model of the recording that `header` starts.
    pub fn new(header: Header) -> Self {
        Self {
            last_machine: header.machine,
            last_end_ns: header.start_mono_ns,
            focus: header.focus_pids.clone(),
            growth: growth::Growth::new(header.start_mono_ns),
            header,
            ..Self::default()
        }
    }

    /// Adds one interval.
    pub fn apply(&mut self, sample: &IntervalSample) {
        self.timeline
            .open(sample.index, sample.start_ns, sample.end_ns);
        self.timeline.set_zones(sample.index, &sample.zones);
        self.timeline.set_allocator(sample.index, &sample.allocator);
        self.allocator.merge(&sample.allocator);
        let changes = self.growth.apply(sample);
        self.timeline.set_memory(sample.index, changes, &self.focus);
        self.files.apply(&sample.files);
        self.stacks.apply(&sample.stacks);
        self.machine.push(MachineInterval::between(
            &self.last_machine,
            &sample.machine,
        ));
        self.last_machine = sample.machine;
        for process in &sample.processes {
            for stall in &process.stalls {
                let Ok(kind) = StallKind::try_from(stall.kind) else {
                    continue;
                };
                for allocation in stall.allocations.iter().filter(|a| a.zones.read > 0) {
                    self.timeline.add_stall_zones(
                        sample.index,
                        StallCategory::of_stall(kind),
                        &allocation.zones.of_order(allocation.order),
                    );
                }
            }
            let unknown = self
                .processes
                .entry((process.pid, process.start_ns))
                .or_insert_with(|| ProcessFaults::new(process.pid, process.start_ns))
                .merge(process);
            if unknown > 0 {
                self.count_malformed(unknown, "a sample entry of an unknown class or kind");
            }
        }
        for exit in &sample.exits {
            if let Some(process) = self.processes.get_mut(&(exit.pid, exit.start_ns)) {
                process.exit_ns = Some(exit.exit_ns);
            }
        }
        for stall in &sample.stall_time {
            let comm = self
                .processes
                .get(&(stall.pid, stall.start_ns))
                .map_or("?", |p| p.comm.as_str());
            self.timeline.add_stall(stall, comm);
        }
        self.timeline.trim(&self.focus);
        self.coarsen();
        self.fold_exited();
        self.kswapd
            .apply(sample.index, &sample.kswapd, &mut self.timeline);
        self.swap.apply(sample);
        for name in &sample.cgroups {
            self.cgroups.entry(name.id).or_insert_with(|| name.clone());
        }
        self.oom.apply(&sample.oom);
        self.records += sample.fault_records;
        if sample.malformed > 0 {
            let reason = sample
                .first_malformed
                .as_deref()
                .unwrap_or("unknown reason");
            self.count_malformed(sample.malformed, reason);
        }
        self.counters = sample.counters;
        self.last_end_ns = sample.end_ns;
    }

    /// Passes over an interval outside the window a report shows: the next interval's rates
    /// start from its machine reading, and the cgroups it named stay known.
    pub fn skip(&mut self, sample: &IntervalSample) {
        self.windowed = true;
        self.last_machine = sample.machine;
        for name in &sample.cgroups {
            self.cgroups.entry(name.id).or_insert_with(|| name.clone());
        }
    }

    /// Keeps the timeline within its bound, merging the machine's intervals as it merges rows.
    fn coarsen(&mut self) {
        let lengths: Vec<u64> = self
            .timeline
            .intervals()
            .iter()
            .map(|i| i.len_ns())
            .collect();
        let merged = self.timeline.coarsen(&self.focus);
        // Right to left, so earlier positions stay valid.
        for &j in merged.iter().rev() {
            let next = self.machine.remove(j);
            let (len, next_len) = (lengths[j - 1], lengths[j]);
            self.machine[j - 1] = self.machine[j - 1].combine(&next, len, next_len);
        }
    }

    /// Keeps the [`KEEP_EXITED`] busiest ended processes and folds the others by command.
    fn fold_exited(&mut self) {
        let mut exited: Vec<((u32, u64), u64)> = self
            .processes
            .iter()
            .filter(|(_, p)| p.exit_ns.is_some() && !self.focus.contains(&p.pid))
            .map(|(key, p)| (*key, p.busy_ns()))
            .collect();
        if exited.len() <= KEEP_EXITED {
            return;
        }
        exited.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (key, _) in exited.drain(KEEP_EXITED..) {
            let Some(process) = self.processes.remove(&key) else {
                continue;
            };
            let name =
                if self.folded.contains_key(&process.comm) || self.folded.len() < KEEP_COMMANDS {
                    process.comm.clone()
                } else {
                    OTHER_COMMANDS.to_string()
                };
            self.folded
                .entry(name.clone())
                .or_insert_with(|| ProcessFaults {
                    comm: name,
                    ..ProcessFaults::new(0, 0)
                })
                .absorb(&process);
        }
        // A burst of thousands of ended processes must not leave its table's capacity behind.
        if self.processes.capacity() > 4 * self.processes.len().max(256) {
            self.processes.shrink_to_fit();
        }
    }

    /// Adds the end of the recording.
    pub fn finish(&mut self, end: &End) {
        self.counters = end.counters;
        self.end = Some(*end);
    }

    fn count_malformed(&mut self, count: u64, reason: &str) {
        self.malformed += count;
        if self.first_malformed.is_none() {
            self.first_malformed = Some(reason.to_string());
        }
    }

    /// Why the recording ended (`Unfinished` without an end frame).
    pub fn stop_reason(&self) -> StopReason {
        self.end.map_or(StopReason::Unfinished, |e| e.stop)
    }

    /// Time recorded: the recorder's own measure when it finished, else the intervals' span
    /// (in a window, the kept intervals' lengths).
    pub fn elapsed_ns(&self) -> u64 {
        if self.windowed {
            return self.timeline.intervals().iter().map(|i| i.len_ns()).sum();
        }
        self.end.map_or_else(
            || self.last_end_ns.saturating_sub(self.header.start_mono_ns),
            |e| e.elapsed_ns,
        )
    }

    /// The latest process with this pid, if it is kept on its own.
    pub fn process(&self, pid: u32) -> Option<&ProcessFaults> {
        self.processes
            .values()
            .filter(|p| p.pid == pid)
            .max_by_key(|p| p.start_ns)
    }

    /// Every process kept on its own, then the folded entries, in no particular order.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessFaults> {
        self.processes.values().chain(self.folded.values())
    }

    /// The name of one process, if it is kept on its own.
    pub fn name_of(&self, pid: u32, start_ns: u64) -> Option<&str> {
        self.processes
            .get(&(pid, start_ns))
            .map(|p| p.comm.as_str())
    }

    /// The name of the latest process with this pid.
    pub fn comm_of(&self, pid: u32) -> &str {
        self.process(pid).map_or("?", |p| p.comm.as_str())
    }

    /// A memory cgroup's recorded path.
    pub fn cgroup_path(&self, id: u64) -> Option<String> {
        self.cgroups.get(&id).and_then(|c| c.path.clone())
    }
}

/// What one interval tick of a live run shows: the interval's sample and the model so far.
pub struct Tick<'a> {
    /// Time since the start of the recording.
    pub elapsed: Duration,
    /// Length of this interval.
    pub interval: Duration,
    /// The interval's sample.
    pub sample: &'a IntervalSample,
    /// Fault records lost in this interval.
    pub lost_faults: u64,
    /// The whole model so far, this interval included.
    pub model: &'a Model,
}

#[cfg(test)]
mod tests;
