//! What is gathered the moment a kill record arrives, while the victim's traces are fresh: the
//! candidates snapshot (task iterator), the trigger's stack, cgroup paths, the machine's memory
//! totals and the kernel log. The sample goes into the interval; the model computes the kill
//! from it. A live copy of the kills is kept here only to show each one as it completes.
use std::path::PathBuf;

use memtrace_common::oom::{OomKillEvent, oom_flags};

use super::{
    cgroups::MemoryHierarchy,
    decode::{OomRecord, candidate_records, decode_oom},
    filter::{Filter, Hierarchy},
    host::host_memory,
    interval::IntervalBuilder,
    kmsg::KmsgReader,
    loader::Tracer,
    machine::monotonic_ns,
    stack::{Symbolizer, is_bpf_frame},
};
use crate::{
    model::oom::{OomKill, OomLog},
    samples::oom::{KmsgOom, OomSample, frame_function},
};

/// Cgroup directories searched for a trigger outside the victim's chain.
const CGROUP_SEARCH_LIMIT: usize = 20_000;

/// Gathers samples for one recording.
pub struct OomCollector {
    start_ns: u64,
    filter: Filter,
    hierarchy: Option<MemoryHierarchy>,
    kmsg: Option<KmsgReader>,
    kmsg_seen: Vec<KmsgOom>,
    symbolizer: Symbolizer,
    /// The kills as the live view shows them.
    live: OomLog,
}

impl OomCollector {
    /// Starts collecting for a recording that started at `start_ns`: from now on, kernel-log
    /// lines are kept for joining.
    pub fn new(filter: Filter, start_ns: u64) -> Self {
        Self {
            start_ns,
            filter,
            hierarchy: MemoryHierarchy::read(),
            kmsg: KmsgReader::open(),
            kmsg_seen: Vec::new(),
            symbolizer: Symbolizer::default(),
            live: OomLog::default(),
        }
    }

    /// Samples the context of a kill. The candidates go first: they change fastest.
    pub fn sample(&mut self, event: OomKillEvent, tracer: &mut Tracer) -> OomSample {
        let candidates = tracer
            .oom_candidates()
            .map(|bytes| candidate_records(&bytes));
        let sampled_ns = monotonic_ns();
        // memtrace's own program and the tracepoint glue sit on top of every stack: noise.
        let stack = tracer
            .oom_stack(event.trigger_stack_id)
            .and_then(|addresses| self.symbolizer.symbolize(&addresses))
            .map(|mut frames| {
                frames.retain(|f| !is_bpf_frame(frame_function(f)));
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
        self.read_kmsg();
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
            host: host_memory(),
            v1: self.hierarchy.as_ref().is_some_and(|h| h.v1),
            level_paths,
            trigger_cgroup,
            stack,
            candidates,
            kmsg,
        }
    }

    /// Reads new kernel-log lines into the interval, for joining to earlier kills.
    pub fn poll_kmsg(&mut self, builder: &mut IntervalBuilder) {
        let lines = self.read_kmsg();
        self.live.apply_kmsg(&lines);
        builder.oom.kernel_log.extend(lines);
    }

    /// Reads new kernel-log lines; returns them and keeps them.
    fn read_kmsg(&mut self) -> Vec<KmsgOom> {
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

    /// Decodes every OOM record waiting, sampling each kill's context as it arrives.
    pub fn drain(
        &mut self,
        ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
        tracer: &mut Tracer,
        builder: &mut IntervalBuilder,
    ) {
        while let Some(item) = ring.next() {
            let record = decode_oom(&item);
            // Release the ring's slot before the (slower) sampling.
            drop(item);
            match record {
                Ok(OomRecord::Kill(event)) if is_kill(&event) => {
                    let sample = self.sample(*event, tracer);
                    self.live.add(OomKill::from_sample(&sample));
                    builder.oom.kills.push(sample);
                }
                Ok(OomRecord::Kill(_)) => builder.oom.marks_without_kill += 1,
                Ok(OomRecord::Aftermath(event)) => {
                    self.live.apply_aftermath(&event);
                    builder.oom.aftermath.push(event);
                }
                Err(error) => builder.count_malformed(&error),
            }
        }
    }

    /// Hands the kills that are ready (victim gone, or a second passed; all with `flush`) to
    /// the live view.
    pub fn show_ready(&mut self, on_oom: &mut impl FnMut(&OomKill), flush: bool) {
        for kill in self.live.take_ready(monotonic_ns(), flush) {
            on_oom(kill);
        }
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
