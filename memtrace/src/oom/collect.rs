//! What is gathered the moment a kill record arrives, while the victim's traces are fresh: the
//! candidates snapshot (task iterator), the trigger's stack, cgroup paths, the machine's memory
//! totals and the kernel log. The model is computed from this sample.
use std::path::PathBuf;

use memtrace_common::oom::{OomCandidateRecord, OomKillEvent, oom_flags, oom_reclaim};

use super::{
    candidates::parse_records,
    host::{HostMemory, MemoryHierarchy},
    kmsg::{KmsgOom, KmsgReader},
    stack::{Symbolizer, function, is_bpf_frame},
};
use crate::{
    collect::{
        filter::{Filter, Hierarchy},
        loader::Tracer,
        machine::monotonic_ns,
    },
    decode::{OomRecord, decode_oom},
    model::Model,
};

/// A reclaim older than this did not lead to this OOM.
const RECLAIM_WINDOW_NS: u64 = 10_000_000_000;
/// Cgroup directories searched for a trigger outside the victim's chain.
const CGROUP_SEARCH_LIMIT: usize = 20_000;

/// One kill record and its context.
#[derive(Clone, Debug)]
pub struct OomSample {
    /// The kill record.
    pub event: OomKillEvent,
    /// CLOCK_MONOTONIC at the start of the recording, and when the snapshot was taken.
    pub start_ns: u64,
    pub sampled_ns: u64,
    /// RAM, swap, swappiness and NUMA nodes, read with the sample.
    pub host: HostMemory,
    /// The memory controller is on cgroup v1 (memsw accounting).
    pub v1: bool,
    /// Directories of the victim's memcg chain, leaf first.
    pub level_paths: Vec<Option<PathBuf>>,
    pub trigger_cgroup: Option<PathBuf>,
    /// The trigger's symbolized kernel stack, or why not.
    pub stack: Result<Vec<String>, String>,
    /// The task iterator's records, or why not.
    pub candidates: Result<Vec<OomCandidateRecord>, String>,
    /// The kernel's `oom-kill:` line for the victim, if read yet.
    pub kmsg: Option<KmsgOom>,
    /// Whether the victim is a traced process.
    pub traced_victim: Option<bool>,
}

impl OomSample {
    /// The trigger's reclaim kind, if it started shortly before the kill.
    pub fn recent_reclaim(&self) -> Option<u32> {
        let e = &self.event;
        let recent = e.ts_ns.saturating_sub(e.reclaim_ns) < RECLAIM_WINDOW_NS;
        (e.reclaim_kind != oom_reclaim::NONE && recent).then_some(e.reclaim_kind)
    }
}

/// Gathers samples for one recording.
pub struct OomCollector {
    start_ns: u64,
    filter: Filter,
    hierarchy: Option<MemoryHierarchy>,
    kmsg: Option<KmsgReader>,
    kmsg_seen: Vec<KmsgOom>,
    symbolizer: Symbolizer,
}

impl OomCollector {
    /// Starts collecting: from now on, kernel-log lines are kept for joining.
    pub fn new(filter: Filter) -> Self {
        Self {
            start_ns: monotonic_ns(),
            filter,
            hierarchy: MemoryHierarchy::read(),
            kmsg: KmsgReader::open(),
            kmsg_seen: Vec::new(),
            symbolizer: Symbolizer::default(),
        }
    }

    /// Samples the context of a kill. The candidates go first: they change fastest.
    pub fn sample(&mut self, event: OomKillEvent, tracer: &mut Tracer) -> OomSample {
        let candidates = tracer.oom_candidates().map(|bytes| parse_records(&bytes));
        let sampled_ns = monotonic_ns();
        // memtrace's own program and the tracepoint glue sit on top of every stack: noise.
        let stack = tracer
            .oom_stack(event.trigger_stack_id)
            .and_then(|addresses| self.symbolizer.symbolize(&addresses))
            .map(|mut frames| {
                frames.retain(|f| !is_bpf_frame(function(f)));
                frames
            });
        let levels = &event.memcg[..(event.memcg_levels as usize).min(event.memcg.len())];
        let level_paths = self.level_paths(&event);
        let trigger_cgroup = match levels.iter().position(|l| l.id == event.trigger_memcg_id) {
            Some(i) => level_paths.get(i).cloned().flatten(),
            None => self
                .hierarchy
                .as_ref()
                .and_then(|h| h.find(event.trigger_memcg_id, CGROUP_SEARCH_LIMIT)),
        };
        self.poll_kmsg();
        let kmsg = self
            .kmsg_seen
            .iter()
            .rev()
            .find(|l| l.pid == event.victim_pid || l.pid == event.victim_tgid)
            .cloned();
        OomSample {
            traced_victim: self.traced(&event),
            event,
            start_ns: self.start_ns,
            sampled_ns,
            host: HostMemory::read(),
            v1: self.hierarchy.as_ref().is_some_and(|h| h.v1),
            level_paths,
            trigger_cgroup,
            stack,
            candidates,
            kmsg,
        }
    }

    /// Reads new kernel-log lines; returns them (for joining to earlier kills) and keeps them.
    pub fn poll_kmsg(&mut self) -> Vec<KmsgOom> {
        let lines = self
            .kmsg
            .as_mut()
            .map(KmsgReader::read_oom_lines)
            .unwrap_or_default();
        self.kmsg_seen.extend(lines.iter().cloned());
        lines
    }

    fn level_paths(&self, event: &OomKillEvent) -> Vec<Option<PathBuf>> {
        let levels = &event.memcg[..(event.memcg_levels as usize).min(event.memcg.len())];
        let Some(hierarchy) = &self.hierarchy else {
            return vec![None; levels.len()];
        };
        let whole = event.flags & oom_flags::CHAIN_TRUNCATED == 0;
        let ids: Vec<u64> = levels.iter().rev().map(|l| l.id).collect();
        (0..levels.len())
            .map(|i| {
                // Level i (leaf first) is the chain from the root down to it.
                let down = &ids[..levels.len() - i];
                let by_chain = whole.then(|| hierarchy.path_of_chain(down)).flatten();
                by_chain.or_else(|| hierarchy.find(levels[i].id, CGROUP_SEARCH_LIMIT))
            })
            .collect()
    }

    /// Whether the victim is one of the traced processes (`None`: cannot tell).
    fn traced(&self, event: &OomKillEvent) -> Option<bool> {
        match &self.filter {
            Filter::All => Some(true),
            Filter::Pids { pids, children } => {
                let listed = pids.contains(&event.victim_tgid);
                // A child followed with --children is not in the list: cannot tell.
                (listed || !children).then_some(listed)
            }
            Filter::Cgroup(target) => {
                let same_hierarchy = self
                    .hierarchy
                    .as_ref()
                    .is_some_and(|h| h.v1 == (target.hierarchy == Hierarchy::V1Memory));
                let levels = &event.memcg[..(event.memcg_levels as usize).min(event.memcg.len())];
                let found = levels.iter().any(|l| l.id == target.id);
                let whole = event.flags & oom_flags::CHAIN_TRUNCATED == 0;
                (same_hierarchy && (found || whole)).then_some(found)
            }
        }
    }
}

/// Whether a mark was a kill: the OOM killer's SIGKILL was seen, or (without that hook) assumed.
pub fn is_kill(event: &OomKillEvent) -> bool {
    event.flags & oom_flags::KILL_SIGNAL_HOOKED == 0
        || event.flags & oom_flags::KILL_SIGNAL_SEEN != 0
}

/// Decodes every OOM record waiting, sampling each kill's context as it arrives.
pub fn drain(
    ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
    tracer: &mut Tracer,
    collector: &mut OomCollector,
    model: &mut Model,
) {
    while let Some(item) = ring.next() {
        let record = decode_oom(&item);
        // Release the ring's slot before the (slower) sampling.
        drop(item);
        match record {
            Ok(OomRecord::Kill(event)) if is_kill(&event) => {
                let sample = collector.sample(*event, tracer);
                model.oom.add(super::OomKill::from_sample(&sample));
            }
            Ok(OomRecord::Kill(_)) => model.oom.marks_without_kill += 1,
            Ok(OomRecord::Aftermath(event)) => model.oom.apply_aftermath(&event),
            Err(error) => model.count_malformed(error),
        }
    }
}

/// Hands the kills that are ready (victim gone, or a second passed; all with `flush`) to the
/// live view.
pub fn show_ready(model: &mut Model, on_oom: &mut impl FnMut(&super::OomKill), flush: bool) {
    for kill in model.oom.take_ready(monotonic_ns(), flush) {
        on_oom(kill);
    }
}
