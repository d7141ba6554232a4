//! Turns decoded records into one [`IntervalSample`] per interval: per-process distributions,
//! stalled time split at the interval boundaries, kswapd's awake time, swap traffic, OOM kills.
//! It keeps what must outlive an interval (the boundaries so far, kswapd's state, the cgroups
//! already named, which process each live pid is) and no distribution past its interval.
use std::collections::{BTreeMap, HashMap};

use memtrace_common::{
    FAULT_CLASSES, FaultClass, FaultEvent, KswapdEvent, KswapdOp, ProcessEvent, ProcessOp,
    StallEvent, StallKind, SwapDir, SwapEvent,
    batch::{MinorBatch, UNTIMED_LATENCY},
    compaction, fault_flags,
};

use super::{
    decode::{DecodeError, Record},
    files::FileAccum,
    machine::process_start_ns,
    processes::{Identity, ProcessTable},
    zones::{ZoneReading, ZoneWatch},
};
use crate::samples::{
    Allocation, CgroupName, ClassSample, IntervalSample, KernelCounters, KswapdSample, KswapdWake,
    KswapdWaker, LatencyStats, ProcessExit, ProcessSample, STALL_CATEGORIES, StallCategory,
    StallSample, StallTime, SwapByMemcg, SwapByTask, TimeSplit, comm_str,
    machine::MachineSample,
    oom::OomInterval,
    stall_kinds::StallKinds,
    zones::{AllocatorEvents, StallZones},
};

/// Intervals after which a memory cgroup not seen since is forgotten by the naming (ten
/// minutes at the default interval).
pub const NAME_AGAIN_AFTER: u64 = 600;

/// Stalled time of one process in one interval, by category (`StallCategory as usize`).
type CategoryNs = [u64; STALL_CATEGORIES];

/// Stalls of one kind of one process in the interval.
#[derive(Default)]
struct StallAccum {
    latency: LatencyStats,
    pages: u64,
    allocations: BTreeMap<(i32, u32), (u64, StallZones)>,
    zone_runs: u64,
    succeeded: u64,
    deferred: u64,
}

/// Faults of one class of one process in the interval.
struct ClassAccum {
    latency: LatencyStats,
    split: TimeSplit,
}

impl ClassAccum {
    fn new() -> Self {
        Self {
            latency: LatencyStats::new(),
            split: TimeSplit::default(),
        }
    }
}

/// A direct-compaction attempt counted at the last close, whose later records (a zone still
/// running, the allocation getting its page) may still come.
struct Counted {
    start_ns: u64,
    /// The time since its start it was counted with.
    counted_ns: u64,
    /// It was counted as succeeded, or as deferred.
    ready: bool,
    deferred: bool,
}

/// A direct-compaction attempt whose zones may still be running: its latest record, and the
/// zones it compacted so far.
struct Attempt {
    event: StallEvent,
    zone_runs: u64,
    /// A zone was deferred; a zone could serve the allocation.
    deferred: bool,
    ready: bool,
}

impl Attempt {
    fn new(event: &StallEvent) -> Self {
        let mut attempt = Self {
            event: *event,
            zone_runs: 0,
            deferred: false,
            ready: false,
        };
        attempt.note(event);
        attempt
    }

    /// Its outcome is "deferred": every zone deferred, none ran, and no success.
    fn outcome_deferred(&self) -> bool {
        !self.ready && self.deferred && self.zone_runs == 0
    }

    /// Takes in what one of its records says.
    fn note(&mut self, event: &StallEvent) {
        self.event.latency_ns = self.event.latency_ns.max(event.latency_ns);
        self.zone_runs += u64::from(event.detail & compaction::ZONE_RUN != 0);
        self.deferred |= event.detail & compaction::DEFERRED != 0;
        self.ready |= event.detail & compaction::READY != 0;
    }
}

/// One process in the interval.
#[derive(Default)]
struct ProcessAccum {
    exit_ns: Option<u64>,
    comm: String,
    named: bool,
    classes: [Option<ClassAccum>; FAULT_CLASSES],
    swapin_pages: u64,
    untimed_faults: u64,
    stalls: StallKinds<StallAccum>,
}

impl ProcessAccum {
    /// Names the process after its main thread, or the first thread seen. The name is compared
    /// before it is copied: this runs for every full record.
    fn name(&mut self, tgid: u32, tid: u32, comm: &[u8]) {
        let name = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(comm.len())];
        if tid == tgid && (!self.named || self.comm.as_bytes() != name) {
            self.comm = comm_str(comm);
            self.named = true;
        } else if self.comm.is_empty() {
            self.comm = comm_str(comm);
        }
    }

    fn into_sample(self, pid: u32, start_ns: u64, memcg_id: u64) -> ProcessSample {
        ProcessSample {
            pid,
            start_ns,
            memcg_id,
            exit_ns: self.exit_ns,
            comm: self.comm,
            named: self.named,
            faults: FaultClass::ALL
                .iter()
                .zip(self.classes)
                .filter_map(|(class, stats)| {
                    stats.map(|c| ClassSample {
                        class: *class as u32,
                        latency: c.latency,
                        split: c.split,
                    })
                })
                .collect(),
            swapin_pages: self.swapin_pages,
            untimed_faults: self.untimed_faults,
            stalls: self
                .stalls
                .into_values()
                .map(|(kind, s)| StallSample {
                    kind: kind as u32,
                    latency: s.latency,
                    pages: s.pages,
                    allocations: s
                        .allocations
                        .into_iter()
                        .map(|((order, gfp_flags), (count, zones))| Allocation {
                            order,
                            gfp_flags,
                            count,
                            zones,
                        })
                        .collect(),
                    zone_runs: s.zone_runs,
                    succeeded: s.succeeded,
                    deferred: s.deferred,
                })
                .collect(),
        }
    }
}

/// kswapd of one node: whether it is awake and its CPU time so far (kept across intervals),
/// and this interval's work.
#[derive(Default)]
struct KswapdAccum {
    awake_since_ns: Option<u64>,
    wakes: u64,
    awake_ns: BTreeMap<u64, u64>,
    woken_by: BTreeMap<(u32, String, i32, i32), u64>,
    wake_zones: BTreeMap<(i32, i32), u64>,
    cpu_total_ns: Option<u64>,
    cpu_ns: Option<u64>,
}

/// Builds the samples of one recording.
pub struct IntervalBuilder {
    index: u64,
    /// Start of every interval so far; the last one is the open interval's.
    boundaries: Vec<u64>,
    /// Processes by (pid, start time).
    processes: HashMap<(u32, u64), ProcessAccum>,
    stall_time: HashMap<(u64, u32, u64), CategoryNs>,
    /// Which process a pid is at a given time.
    table: ProcessTable,
    exits: Vec<ProcessExit>,
    kswapd: BTreeMap<u32, KswapdAccum>,
    /// The zones' readings of the open interval.
    zones: ZoneWatch,
    /// The kernel's allocator counters at the last close, and the interval's events.
    allocator_totals: Option<Vec<u64>>,
    allocator: AllocatorEvents,
    /// The interval's major faults by file.
    files: FileAccum,
    /// kcompactd's CPU time at the last close.
    kcompactd_total_ns: Option<u64>,
    /// Direct-compaction attempts of this interval not yet counted, by thread id; and those
    /// counted at the last close, whose later records add time and a late success.
    compacting: HashMap<u32, Attempt>,
    compacted: HashMap<u32, Counted>,
    swap_by_task: HashMap<u32, SwapByTask>,
    swap_by_memcg: HashMap<u64, SwapByMemcg>,
    /// Memory cgroups already named in a sample, with the last interval each was seen in.
    /// One unseen for `NAME_AGAIN_AFTER` intervals is forgotten (named again if it comes back,
    /// which also names a new cgroup that reused its id right): the set stays bounded by the
    /// cgroups active lately, however many come and go over weeks of `serve`.
    named_memcgs: HashMap<u64, u64>,
    /// The memory cgroup of each process, as its last full fault or stall record said (batched
    /// minor faults carry none; the kernel sends a full record when a process changes cgroup),
    /// and the processes that ended in the last interval with their memcg then: forgotten at
    /// the next close, once their last batches are in.
    memcgs: HashMap<u32, u64>,
    ended: Vec<(u32, u64)>,
    /// OOM kills and their aftermath, filled by the session.
    pub oom: OomInterval,
    fault_records: u64,
    malformed: u64,
    first_malformed: Option<String>,
}

impl IntervalBuilder {
    /// A recording whose first interval starts at `start_ns` (CLOCK_MONOTONIC).
    pub fn new(start_ns: u64) -> Self {
        Self {
            index: 0,
            boundaries: vec![start_ns],
            processes: HashMap::new(),
            stall_time: HashMap::new(),
            table: ProcessTable::default(),
            exits: Vec::new(),
            kswapd: BTreeMap::new(),
            zones: ZoneWatch::default(),
            allocator_totals: None,
            allocator: AllocatorEvents::default(),
            files: FileAccum::default(),
            kcompactd_total_ns: None,
            compacting: HashMap::new(),
            compacted: HashMap::new(),
            swap_by_task: HashMap::new(),
            swap_by_memcg: HashMap::new(),
            named_memcgs: HashMap::new(),
            memcgs: HashMap::new(),
            ended: Vec::new(),
            oom: OomInterval::default(),
            fault_records: 0,
            malformed: 0,
            first_malformed: None,
        }
    }

    /// Adds one decoded record, or counts one that did not decode.
    pub fn add(&mut self, record: Result<Record, DecodeError>) {
        match record {
            Ok(Record::Fault { event, class }) => self.add_fault(&event, class),
            Ok(Record::Stall { event, stall }) => self.add_stall(&event, stall),
            Ok(Record::Swap { event, dir }) => self.add_swap(&event, dir),
            Ok(Record::Kswapd { event, op }) => self.add_kswapd(&event, op),
            Ok(Record::MinorBatch(batch)) => self.add_minor_batch(&batch),
            Ok(Record::Comm(event)) => {
                // Sent as it happens: the pid's latest process.
                let process = self.process(event.tgid, u64::MAX);
                process.comm = comm_str(&event.comm);
                process.named = true;
            }
            Ok(Record::Process { event, op }) => self.add_process(&event, op),
            Err(error) => self.count_malformed(&error),
        }
    }

    /// Counts a record that did not decode (of either ring buffer).
    pub fn count_malformed(&mut self, error: &DecodeError) {
        self.malformed += 1;
        if self.first_malformed.is_none() {
            self.first_malformed = Some(error.to_string());
        }
    }

    /// The accumulator of the process `pid` was at `at_ns`.
    fn process(&mut self, pid: u32, at_ns: u64) -> &mut ProcessAccum {
        let Identity { start_ns, exit_ns } = self.table.identify(pid, at_ns, process_start_ns);
        let process = self.processes.entry((pid, start_ns)).or_default();
        process.exit_ns = exit_ns;
        process
    }

    fn add_process(&mut self, event: &ProcessEvent, op: ProcessOp) {
        match op {
            ProcessOp::Start => self.table.start(event.tgid, event.start_ns),
            ProcessOp::Exit => {
                let exit = self.table.exit(event.tgid, event.start_ns, event.ts_ns);
                if let Some(process) = self.processes.get_mut(&(event.tgid, exit.start_ns)) {
                    process.exit_ns = Some(event.ts_ns);
                }
                self.exits.push(exit);
            }
        }
    }

    /// Notes the memory cgroup a full record gave for its process.
    fn note_memcg(&mut self, tgid: u32, memcg_id: u64) {
        if memcg_id != 0 {
            self.memcgs.insert(tgid, memcg_id);
        }
    }

    fn add_fault(&mut self, event: &FaultEvent, class: FaultClass) {
        self.fault_records += 1;
        self.note_memcg(event.tgid, event.memcg_id);
        let process = self.process(event.tgid, event.start_ns);
        process.name(event.tgid, event.tid, &event.comm);
        if event.flags & fault_flags::UNTIMED != 0 {
            process.untimed_faults += 1;
            return;
        }
        let accum = process.classes[class as usize].get_or_insert_with(ClassAccum::new);
        accum.latency.record(event.latency_ns);
        accum.split.add(&TimeSplit {
            off_cpu_ns: event.off_cpu_ns,
            waiting_ns: event.waiting_ns,
        });
        process.swapin_pages += u64::from(event.swapin_pages);
        if class == FaultClass::MajorFile && event.file_ino != 0 {
            self.files.add(event);
        }
        if let Some(category) = StallCategory::of_fault(class) {
            self.add_stalled(event.tgid, category, event.start_ns, event.latency_ns);
        } else if event.off_cpu_ns > event.waiting_ns {
            // Placed at the fault's end, where a fault's blocked time usually lies.
            let blocked = event.off_cpu_ns - event.waiting_ns;
            let from = event.start_ns + event.latency_ns.saturating_sub(blocked);
            self.add_stalled(event.tgid, StallCategory::MinorBlocked, from, blocked);
        }
    }

    /// Minor faults from a batch; their process was named by its first, full record.
    pub fn add_minor_batch(&mut self, batch: &MinorBatch) {
        let count = (batch.count as usize).min(batch.entries.len());
        self.fault_records += count as u64;
        // A CPU's batch is mostly runs of one process: find its identity and table entry once
        // per run, not per fault.
        for run in batch.entries[..count].chunk_by(|a, b| a >> 32 == b >> 32) {
            let (tgid, _) = MinorBatch::unpack(run[0]);
            // Entries carry no time of their own; the batch's first is the earliest.
            let process = self.process(tgid, batch.first_ns);
            for &entry in run {
                match MinorBatch::unpack(entry).1 {
                    UNTIMED_LATENCY => process.untimed_faults += 1,
                    latency => process.classes[FaultClass::Minor as usize]
                        .get_or_insert_with(ClassAccum::new)
                        .latency
                        .record(u64::from(latency)),
                }
            }
        }
    }

    fn add_stall(&mut self, event: &StallEvent, kind: StallKind) {
        if kind == StallKind::Compaction {
            self.add_compaction(event);
        } else {
            self.count_stall(event, kind, None);
        }
    }

    /// Counts one stall: its latency, pages, allocation, zones and stalled time (and, for
    /// direct compaction, the attempt's zones and outcome).
    fn count_stall(&mut self, event: &StallEvent, kind: StallKind, attempt: Option<&Attempt>) {
        self.note_memcg(event.tgid, event.memcg_id);
        let process = self.process(event.tgid, event.start_ns);
        process.name(event.tgid, event.tid, &event.comm);
        let stats = process.stalls.get_or_default(kind);
        stats.latency.record(event.latency_ns);
        if kind != StallKind::Compaction {
            stats.pages += event.nr_reclaimed;
        }
        if let Some(attempt) = attempt {
            stats.zone_runs += attempt.zone_runs;
            stats.succeeded += u64::from(attempt.ready);
            stats.deferred += u64::from(attempt.outcome_deferred());
        }
        let (count, zones) = stats
            .allocations
            .entry((event.order, event.gfp_flags))
            .or_default();
        *count += 1;
        zones.add_word(event.zones);
        let category = StallCategory::of_stall(kind);
        self.add_stalled(event.tgid, category, event.start_ns, event.latency_ns);
    }

    /// One record of a direct-compaction attempt. Its records share the attempt's start and
    /// each carries the time since: the attempt is one stall, counted with its last record's
    /// time once it can have no more (at the close of the interval, or at the thread's next
    /// attempt). A zone that ends after that close only adds its time.
    fn add_compaction(&mut self, event: &StallEvent) {
        let zone_run = u64::from(event.detail & compaction::ZONE_RUN != 0);
        if let Some(attempt) = self.compacting.get_mut(&event.tid)
            && attempt.event.start_ns == event.start_ns
        {
            attempt.note(event);
            return;
        }
        if event.detail & compaction::FIRST != 0 {
            if let Some(done) = self.compacting.insert(event.tid, Attempt::new(event)) {
                self.count_stall(&done.event, StallKind::Compaction, Some(&done));
            }
            return;
        }
        // A late record of an attempt counted at the last close: a zone that ended after it,
        // or the allocation getting its page just after it (a success the close could not
        // know; one counted as deferred stays so, the totals must add up).
        let Some(counted) = self.compacted.get_mut(&event.tid) else {
            return;
        };
        if counted.start_ns != event.start_ns {
            return;
        }
        let newly_ready =
            event.detail & compaction::READY != 0 && !counted.ready && !counted.deferred;
        counted.ready |= newly_ready;
        let (from, extra) = (
            counted.start_ns + counted.counted_ns,
            event.latency_ns.saturating_sub(counted.counted_ns),
        );
        counted.counted_ns = counted.counted_ns.max(event.latency_ns);
        let process = self.process(event.tgid, event.start_ns);
        let stats = process.stalls.get_or_default(StallKind::Compaction);
        stats.zone_runs += zone_run;
        stats.succeeded += u64::from(newly_ready);
        if extra > 0 {
            self.add_stalled(event.tgid, StallCategory::Compaction, from, extra);
        }
    }

    /// Counts the attempts still open: called at each close.
    fn count_attempts(&mut self) {
        self.compacted.clear();
        for (tid, attempt) in std::mem::take(&mut self.compacting) {
            let e = &attempt.event;
            let counted = Counted {
                start_ns: e.start_ns,
                counted_ns: e.latency_ns,
                ready: attempt.ready,
                deferred: attempt.outcome_deferred(),
            };
            self.compacted.insert(tid, counted);
            self.count_stall(e, StallKind::Compaction, Some(&attempt));
        }
    }

    /// A reading of the zones' free pages and watermarks (several an interval).
    pub fn zone_reading(&mut self, reading: &ZoneReading) {
        self.zones.add_reading(reading);
    }

    /// The kernel's cumulative allocator counters (`VM_COUNTS`), read just before a close: the
    /// interval gets the growth since the last reading.
    pub fn allocator_counts(&mut self, totals: &[u64]) {
        if let Some(before) = &self.allocator_totals {
            self.allocator
                .merge(&AllocatorEvents::between(before, totals));
        }
        self.allocator_totals = Some(totals.to_vec());
    }

    /// kcompactd's cumulative CPU time, all nodes together, read just before a close (`None`:
    /// no kcompactd thread found): the interval gets the growth since the last reading.
    pub fn kcompactd_cpu(&mut self, total_ns: Option<u64>) {
        if let (Some(before), Some(now)) = (self.kcompactd_total_ns, total_ns) {
            *self.allocator.kcompactd_cpu_ns.get_or_insert(0) += now.saturating_sub(before);
        }
        self.kcompactd_total_ns = total_ns.or(self.kcompactd_total_ns);
    }

    /// The cumulative CPU time of each node's kswapd (`(nid, ns)`), read just before a close:
    /// the interval gets the growth since the last reading.
    pub fn kswapd_cpu(&mut self, readings: &[(u32, u64)]) {
        for &(nid, total) in readings {
            let node = self.kswapd.entry(nid).or_default();
            if let Some(before) = node.cpu_total_ns {
                *node.cpu_ns.get_or_insert(0) += total.saturating_sub(before);
            }
            node.cpu_total_ns = Some(total);
        }
    }

    fn add_stalled(&mut self, pid: u32, category: StallCategory, start_ns: u64, len_ns: u64) {
        let process_start = self
            .table
            .identify(pid, start_ns, process_start_ns)
            .start_ns;
        for (index, ns) in split(&self.boundaries, start_ns, len_ns) {
            self.stall_time
                .entry((index, pid, process_start))
                .or_default()[category as usize] += ns;
        }
    }

    fn add_swap(&mut self, event: &SwapEvent, dir: SwapDir) {
        let pages = u64::from(event.pages);
        let (out_pages, in_pages) = match dir {
            SwapDir::Out => (pages, 0),
            SwapDir::In => (0, pages),
        };
        let task = self
            .swap_by_task
            .entry(event.tgid)
            .or_insert_with(|| SwapByTask {
                pid: event.tgid,
                comm: comm_str(&event.comm),
                ..SwapByTask::default()
            });
        task.out_pages += out_pages;
        task.in_pages += in_pages;
        let memcg = self
            .swap_by_memcg
            .entry(event.memcg_id)
            .or_insert_with(|| SwapByMemcg {
                memcg_id: event.memcg_id,
                ..SwapByMemcg::default()
            });
        memcg.out_pages += out_pages;
        memcg.in_pages += in_pages;
    }

    fn add_kswapd(&mut self, event: &KswapdEvent, op: KswapdOp) {
        let node = self.kswapd.entry(event.nid).or_default();
        match op {
            KswapdOp::Wake => {
                node.wakes += 1;
                *node.wake_zones.entry((event.zid, event.order)).or_default() += 1;
                node.awake_since_ns.get_or_insert(event.ts_ns);
            }
            KswapdOp::Sleep => {
                if let Some(since) = node.awake_since_ns.take() {
                    let len = event.ts_ns.saturating_sub(since);
                    for (index, ns) in split(&self.boundaries, since, len) {
                        *node.awake_ns.entry(index).or_default() += ns;
                    }
                }
            }
            KswapdOp::WokenBy => {
                *node
                    .woken_by
                    .entry((event.tgid, comm_str(&event.comm), event.order, event.zid))
                    .or_default() += 1;
            }
        }
    }

    /// Closes the interval at `machine.mono_ns` and starts the next one. `name_cgroup` finds the
    /// path and limit of a memory cgroup seen for the first time.
    pub fn close(
        &mut self,
        machine: MachineSample,
        counters: KernelCounters,
        mut name_cgroup: impl FnMut(u64) -> CgroupName,
    ) -> IntervalSample {
        let end_ns = machine.mono_ns;
        let start_ns = self.boundaries.last().copied().unwrap_or(end_ns);
        self.count_attempts();
        // kswapd still awake: its time so far belongs to this interval.
        for node in self.kswapd.values_mut() {
            if let Some(since) = node.awake_since_ns
                && end_ns > since
            {
                for (index, ns) in split(&self.boundaries, since, end_ns - since) {
                    *node.awake_ns.entry(index).or_default() += ns;
                }
                node.awake_since_ns = Some(end_ns);
            }
        }
        // Taken, not drained: a burst of thousands of processes in one interval must not leave
        // its table's capacity behind for the rest of the run.
        let memcgs = &self.memcgs;
        let mut processes: Vec<ProcessSample> = std::mem::take(&mut self.processes)
            .into_iter()
            .map(|((pid, start_ns), p)| {
                p.into_sample(pid, start_ns, memcgs.get(&pid).copied().unwrap_or(0))
            })
            .collect();
        processes.sort_by_key(|p| (p.pid, p.start_ns));
        let mut stall_time: Vec<StallTime> = std::mem::take(&mut self.stall_time)
            .into_iter()
            .map(|((interval, pid, start_ns), ns)| StallTime {
                interval,
                pid,
                start_ns,
                ns: StallCategory::ALL
                    .iter()
                    .filter(|c| ns[**c as usize] > 0)
                    .map(|&c| (c, ns[c as usize]))
                    .collect(),
            })
            .collect();
        stall_time.sort_by_key(|s| (s.interval, s.pid, s.start_ns));
        let kswapd = self.take_kswapd();
        let mut swap_by_task: Vec<SwapByTask> = self.swap_by_task.drain().map(|(_, t)| t).collect();
        swap_by_task.sort_by_key(|t| t.pid);
        let mut swap_by_memcg: Vec<SwapByMemcg> =
            self.swap_by_memcg.drain().map(|(_, m)| m).collect();
        swap_by_memcg.sort_by_key(|m| m.memcg_id);
        let mut new_memcgs: Vec<u64> = swap_by_memcg
            .iter()
            .map(|m| m.memcg_id)
            .chain(processes.iter().map(|p| p.memcg_id))
            .filter(|&id| id != 0 && self.named_memcgs.insert(id, self.index).is_none())
            .collect();
        if self.index.is_multiple_of(NAME_AGAIN_AFTER) {
            let index = self.index;
            self.named_memcgs
                .retain(|_, seen| index - *seen < NAME_AGAIN_AFTER);
        }
        new_memcgs.sort_unstable();
        let cgroups = new_memcgs.into_iter().map(&mut name_cgroup).collect();
        self.forget_ended();
        let sample = IntervalSample {
            index: self.index,
            start_ns,
            end_ns,
            machine,
            processes,
            stall_time,
            kswapd,
            zones: self.zones.close(),
            allocator: std::mem::take(&mut self.allocator),
            swap_by_task,
            swap_by_memcg,
            cgroups,
            oom: std::mem::take(&mut self.oom),
            exits: std::mem::take(&mut self.exits),
            files: self.files.close(),
            memory: Default::default(),
            stacks: Default::default(),
            fault_records: std::mem::take(&mut self.fault_records),
            malformed: std::mem::take(&mut self.malformed),
            first_malformed: self.first_malformed.take(),
            counters,
        };
        self.index += 1;
        self.boundaries.push(end_ns.max(start_ns));
        self.table.prune(end_ns);
        sample
    }

    /// Forgets the memcgs of the processes that ended in the previous interval (unless their
    /// pid is another process's now), and remembers this interval's for the next close.
    fn forget_ended(&mut self) {
        for (pid, memcg_id) in std::mem::take(&mut self.ended) {
            if self.memcgs.get(&pid) == Some(&memcg_id) {
                self.memcgs.remove(&pid);
            }
        }
        self.ended = self
            .exits
            .iter()
            .filter_map(|e| Some((e.pid, *self.memcgs.get(&e.pid)?)))
            .collect();
        if self.memcgs.capacity() > 4 * self.memcgs.len().max(256) {
            self.memcgs.shrink_to_fit();
        }
    }

    fn take_kswapd(&mut self) -> Vec<KswapdSample> {
        self.kswapd
            .iter_mut()
            .filter(|(_, n)| {
                n.wakes > 0
                    || !n.awake_ns.is_empty()
                    || !n.woken_by.is_empty()
                    || n.cpu_ns.is_some()
            })
            .map(|(&nid, node)| KswapdSample {
                nid,
                cpu_ns: node.cpu_ns.take(),
                wakes: std::mem::take(&mut node.wakes),
                awake_ns: std::mem::take(&mut node.awake_ns).into_iter().collect(),
                woken_by: std::mem::take(&mut node.woken_by)
                    .into_iter()
                    .map(|((pid, comm, order, zid), count)| KswapdWaker {
                        pid,
                        comm,
                        order,
                        count,
                        zid: Some(zid),
                    })
                    .collect(),
                wake_zones: std::mem::take(&mut node.wake_zones)
                    .into_iter()
                    .map(|((zid, order), count)| KswapdWake { zid, order, count })
                    .collect(),
            })
            .collect()
    }
}

/// Splits `[start_ns, start_ns + len_ns)` over the intervals that `boundaries` start: (index,
/// overlap) for each one it touches. The part before the first interval is dropped; the open
/// (last) interval takes everything after its start.
fn split(boundaries: &[u64], start_ns: u64, len_ns: u64) -> Vec<(u64, u64)> {
    let end_ns = start_ns.saturating_add(len_ns);
    let mut parts = Vec::new();
    for (i, &lo) in boundaries.iter().enumerate().rev() {
        let hi = boundaries.get(i + 1).copied().unwrap_or(u64::MAX);
        let overlap = end_ns.min(hi).saturating_sub(start_ns.max(lo));
        if overlap > 0 {
            parts.push((i as u64, overlap));
        }
        if lo <= start_ns {
            break;
        }
    }
    parts
}

#[cfg(test)]
mod memcg_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod truth_tests;
