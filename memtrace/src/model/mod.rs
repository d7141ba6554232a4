//! The aggregate built from decoded records: per-process, per-class fault latency, plus the
//! counts of the current interval for the live line. Renderers read it; nothing here prints.
mod hist;
pub mod machine;
pub mod swap;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};

pub use hist::{LatencyStats, LatencySummary, Log2Bucket, SIGNIFICANT_DIGITS};
use machine::{MachineInterval, MachineSample};
use memtrace_common::{
    FAULT_CLASSES, FaultClass, FaultEvent, STALL_KINDS, StallEvent, StallKind, batch::MinorBatch,
};
use swap::{Kswapd, SwapTraffic};
use timeline::{StallCategory, Timeline};

use crate::decode::{DecodeError, Record, comm_str};

/// Stalls of one kind in one process.
#[derive(Clone, Debug, Default)]
pub struct StallStats {
    /// Count, total and distribution of the stall latency.
    pub latency: LatencyStats,
    /// Pages reclaimed during these stalls.
    pub pages: u64,
    /// How many stalls each (order, gfp flags) of allocation caused.
    pub allocations: BTreeMap<(i32, u32), u64>,
}

/// Faults of one process.
#[derive(Clone, Debug)]
pub struct ProcessFaults {
    /// Thread group id.
    pub pid: u32,
    /// `comm` of the thread that faulted last.
    pub comm: String,
    /// Per class (indexed by `FaultClass as usize`); `None` until the first fault of the class.
    pub classes: [Option<LatencyStats>; FAULT_CLASSES],
    /// Pages read back from swap during this process's faults.
    pub swapin_pages: u64,
    /// Reclaim and compaction stalls, per kind (indexed by `StallKind as usize`).
    pub stalls: [Option<StallStats>; STALL_KINDS],
}

impl ProcessFaults {
    fn new(pid: u32) -> Self {
        Self {
            pid,
            comm: String::new(),
            classes: Default::default(),
            swapin_pages: 0,
            stalls: Default::default(),
        }
    }

    /// The stalls of one kind, if any.
    pub fn stall(&self, kind: StallKind) -> Option<&StallStats> {
        self.stalls[kind as usize].as_ref()
    }

    /// Time spent in reclaim and compaction stalls.
    pub fn stall_ns(&self) -> u64 {
        self.stalls
            .iter()
            .flatten()
            .map(|s| s.latency.total_ns())
            .sum()
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
}

/// Counts of one interval, for the live line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntervalCounts {
    /// Faults per class.
    pub faults: [u64; FAULT_CLASSES],
    /// Faults per process.
    pub per_pid: HashMap<u32, u64>,
    /// Records that did not decode.
    pub decode_errors: u64,
    /// Reclaim and compaction stalls per kind.
    pub stalls: [u64; STALL_KINDS],
    /// Time in those stalls.
    pub stall_ns: u64,
}

impl IntervalCounts {
    /// All faults of the interval.
    pub fn total(&self) -> u64 {
        self.faults.iter().sum()
    }

    /// The `n` busiest processes, busiest first (ties by pid).
    pub fn top(&self, n: usize) -> Vec<(u32, u64)> {
        let mut all: Vec<(u32, u64)> = self.per_pid.iter().map(|(&p, &c)| (p, c)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

/// Everything aggregated so far.
#[derive(Clone, Debug, Default)]
pub struct Model {
    processes: HashMap<u32, ProcessFaults>,
    interval: IntervalCounts,
    /// Per-interval stall time and kswapd busy time.
    pub timeline: Timeline,
    /// The machine during each closed interval (same order as the timeline's).
    pub machine: Vec<MachineInterval>,
    last_sample: Option<MachineSample>,
    /// Swap traffic by task and memory cgroup.
    pub swap: SwapTraffic,
    /// kswapd per node.
    pub kswapd: Kswapd,
    /// Records decoded since the start.
    pub records: u64,
    /// Records that did not decode, by reason (first seen kept for the report).
    pub decode_errors: u64,
    /// The first decode error seen, for the report.
    pub first_decode_error: Option<DecodeError>,
    /// OOM kills, from their own ring buffer.
    pub oom: crate::oom::OomLog,
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty model whose first interval starts at `sample` (CLOCK_MONOTONIC).
    pub fn starting_at(sample: MachineSample) -> Self {
        Self {
            timeline: Timeline::new(sample.mono_ns),
            last_sample: Some(sample),
            ..Self::default()
        }
    }

    /// Closes the current interval at `sample`'s time, with the machine's context.
    pub fn close_interval(&mut self, sample: MachineSample) {
        self.kswapd.settle(sample.mono_ns, &mut self.timeline);
        self.timeline.close(sample.mono_ns);
        let prev = self.last_sample.unwrap_or(sample);
        self.machine.push(MachineInterval::between(&prev, &sample));
        self.last_sample = Some(sample);
    }

    /// Adds one decoded record, or counts one that did not decode.
    pub fn apply(&mut self, record: Result<Record, DecodeError>) {
        match record {
            Ok(Record::Fault { event, class }) => self.add_fault(&event, class),
            Ok(Record::Stall { event, stall }) => self.add_stall(&event, stall),
            Ok(Record::Swap(event)) => self.swap.add(&event),
            Ok(Record::Kswapd(event)) => self.kswapd.add(&event, &mut self.timeline),
            Ok(Record::MinorBatch(batch)) => self.add_minor_batch(&batch),
            Ok(Record::Comm(event)) => {
                let process = self
                    .processes
                    .entry(event.tgid)
                    .or_insert_with(|| ProcessFaults::new(event.tgid));
                process.comm = comm_str(&event.comm);
            }
            Err(error) => self.count_malformed(error),
        }
    }

    /// Counts a record that did not decode (of either ring buffer).
    pub fn count_malformed(&mut self, error: DecodeError) {
        self.decode_errors += 1;
        self.interval.decode_errors += 1;
        self.first_decode_error.get_or_insert(error);
    }

    /// The process of a record, named after its main thread (or the first thread seen). The
    /// name is compared before it is copied: this runs for every record.
    fn process_mut(&mut self, tgid: u32, tid: u32, comm: &[u8]) -> &mut ProcessFaults {
        let process = self
            .processes
            .entry(tgid)
            .or_insert_with(|| ProcessFaults::new(tgid));
        let name = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(comm.len())];
        if process.comm.is_empty() || (tid == tgid && process.comm.as_bytes() != name) {
            process.comm = comm_str(comm);
        }
        process
    }

    fn add_fault(&mut self, event: &FaultEvent, class: FaultClass) {
        self.records += 1;
        let process = self.process_mut(event.tgid, event.tid, &event.comm);
        process.classes[class as usize]
            .get_or_insert_with(LatencyStats::new)
            .record(event.latency_ns);
        process.swapin_pages += u64::from(event.swapin_pages);
        self.interval.faults[class as usize] += 1;
        *self.interval.per_pid.entry(event.tgid).or_default() += 1;
        if let Some(category) = StallCategory::of_fault(class) {
            self.timeline
                .add_stall(event.tgid, category, event.start_ns, event.latency_ns);
        }
    }

    /// Minor faults from a batch; their process was named by its first, full record.
    pub fn add_minor_batch(&mut self, batch: &MinorBatch) {
        let count = (batch.count as usize).min(batch.entries.len());
        for &entry in &batch.entries[..count] {
            let (tgid, latency_ns) = MinorBatch::unpack(entry);
            self.records += 1;
            let process = self
                .processes
                .entry(tgid)
                .or_insert_with(|| ProcessFaults::new(tgid));
            process.classes[FaultClass::Minor as usize]
                .get_or_insert_with(LatencyStats::new)
                .record(u64::from(latency_ns));
            self.interval.faults[FaultClass::Minor as usize] += 1;
            *self.interval.per_pid.entry(tgid).or_default() += 1;
        }
    }

    fn add_stall(&mut self, event: &StallEvent, kind: StallKind) {
        let process = self.process_mut(event.tgid, event.tid, &event.comm);
        let stats = process.stalls[kind as usize].get_or_insert_with(StallStats::default);
        stats.latency.record(event.latency_ns);
        if kind != StallKind::Compaction {
            stats.pages += event.nr_reclaimed;
        }
        *stats
            .allocations
            .entry((event.order, event.gfp_flags))
            .or_default() += 1;
        self.interval.stalls[kind as usize] += 1;
        self.interval.stall_ns += event.latency_ns;
        let category = StallCategory::of_stall(kind);
        self.timeline
            .add_stall(event.tgid, category, event.start_ns, event.latency_ns);
    }

    /// Returns the current interval's counts and starts a new interval.
    pub fn take_interval(&mut self) -> IntervalCounts {
        std::mem::take(&mut self.interval)
    }

    /// One process's faults.
    pub fn process(&self, pid: u32) -> Option<&ProcessFaults> {
        self.processes.get(&pid)
    }

    /// Every process seen, in no particular order.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessFaults> {
        self.processes.values()
    }

    /// The name of a process as last seen.
    pub fn comm_of(&self, pid: u32) -> &str {
        self.processes.get(&pid).map_or("?", |p| p.comm.as_str())
    }
}

#[cfg(test)]
mod tests {
    use memtrace_common::EventKind;

    use super::*;

    fn fault(tgid: u32, tid: u32, class: FaultClass, latency_ns: u64, comm: &[u8]) -> Record {
        let mut name = [0u8; 16];
        name[..comm.len()].copy_from_slice(comm);
        let event = FaultEvent {
            kind: EventKind::Fault as u32,
            class: class as u32,
            tgid,
            tid,
            start_ns: 0,
            latency_ns,
            flags: 0,
            swapin_pages: u32::from(class == FaultClass::MajorSwap),
            comm: name,
        };
        Record::Fault { event, class }
    }

    #[test]
    fn aggregates_per_process_and_class() {
        let mut model = Model::new();
        model.apply(Ok(fault(10, 10, FaultClass::Minor, 100, b"a")));
        model.apply(Ok(fault(10, 11, FaultClass::Minor, 300, b"a-worker")));
        model.apply(Ok(fault(10, 10, FaultClass::MajorSwap, 50_000, b"a")));
        model.apply(Ok(fault(20, 20, FaultClass::MajorFile, 9_000, b"b")));
        let a = model.process(10).expect("a");
        assert_eq!(a.comm, "a", "the main thread names the process");
        assert_eq!(a.total_count(), 3);
        assert_eq!(a.total_ns(), 50_400);
        assert_eq!(a.class(FaultClass::Minor).map(LatencyStats::count), Some(2));
        assert_eq!(
            a.class(FaultClass::MajorFile).map(LatencyStats::count),
            None
        );
        assert_eq!(a.swapin_pages, 1);
        assert_eq!(model.records, 4);
        assert_eq!(model.processes().count(), 2);
    }

    #[test]
    fn minor_batches_count_under_the_name_of_the_first_full_record() {
        use memtrace_common::batch::MINOR_BATCH_LEN;
        let mut model = Model::new();
        model.apply(Ok(fault(10, 10, FaultClass::Minor, 100, b"app")));
        let mut batch = MinorBatch {
            kind: 4,
            count: 3,
            first_ns: 0,
            entries: [0; MINOR_BATCH_LEN],
        };
        batch.entries[0] = MinorBatch::entry(10, 200);
        batch.entries[1] = MinorBatch::entry(10, 300);
        batch.entries[2] = MinorBatch::entry(11, 400);
        // Entries past `count` are ignored.
        batch.entries[3] = MinorBatch::entry(12, 500);
        model.apply(Ok(Record::MinorBatch(Box::new(batch))));
        let app = model.process(10).expect("app");
        assert_eq!(
            (app.comm.as_str(), app.total_count(), app.total_ns()),
            ("app", 3, 600)
        );
        assert_eq!(model.process(11).map(ProcessFaults::total_count), Some(1));
        assert!(model.process(12).is_none());
        assert_eq!(model.records, 4);
        let exec = memtrace_common::batch::CommEvent {
            kind: 5,
            tgid: 10,
            comm: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        model.apply(Ok(Record::Comm(exec)));
        assert_eq!(model.comm_of(10), "cat");
    }

    #[test]
    fn intervals_reset_and_rank_processes() {
        let mut model = Model::new();
        for _ in 0..3 {
            model.apply(Ok(fault(20, 20, FaultClass::Minor, 1, b"b")));
        }
        model.apply(Ok(fault(10, 10, FaultClass::MajorFile, 1, b"a")));
        model.apply(Err(DecodeError::UnknownKind { kind: 9 }));
        let interval = model.take_interval();
        assert_eq!(interval.total(), 4);
        assert_eq!(interval.faults, [3, 1, 0]);
        assert_eq!(interval.top(1), vec![(20, 3)]);
        assert_eq!(interval.decode_errors, 1);
        assert_eq!(model.take_interval(), IntervalCounts::default());
        assert_eq!(model.decode_errors, 1);
        assert_eq!(
            model.first_decode_error,
            Some(DecodeError::UnknownKind { kind: 9 })
        );
    }
}
