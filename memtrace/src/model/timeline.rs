//! Time split into the recording's intervals: how much of each interval a process spent
//! stalled, by kind, and how long kswapd was awake. Stalls arrive already split at the
//! interval boundaries (by `collect`), tagged with the interval they belong to.
use std::collections::{BTreeMap, HashMap};

pub use crate::samples::StallCategory;
use crate::samples::{
    STALL_CATEGORIES, StallTime,
    zones::{AllocatorEvents, StallZones, ZoneSample, absorb_zones},
};

/// Number of categories.
pub const CATEGORIES: usize = STALL_CATEGORIES;

/// Processes of one interval the timeline keeps (besides the focus ones).
pub const KEEP_PER_INTERVAL: usize = 8;

/// Stalled time of one process in one interval, by category.
pub type StallNs = [u64; CATEGORIES];

/// Processes whose memory changed most in one interval the timeline keeps (besides the focus
/// ones).
pub const KEEP_MEMORY_PER_INTERVAL: usize = 3;

/// How much one process's memory (resident + swap) moved over an interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryChange {
    pub pid: u32,
    pub start_ns: u64,
    pub comm: String,
    /// Its memory at the interval's close (0: it ended).
    pub total_kb: u64,
    /// The change over the interval: a process that started in it counts from 0, one that
    /// ended down to 0.
    pub delta_kb: i64,
}

/// Keeps the `keep` largest changes (either way) and the `focus` pids', largest first.
fn keep_largest_changes(changes: &mut Vec<MemoryChange>, keep: usize, focus: &[u32]) {
    changes.sort_by(|a, b| {
        (b.delta_kb.unsigned_abs())
            .cmp(&a.delta_kb.unsigned_abs())
            .then(a.pid.cmp(&b.pid))
    });
    let mut others = 0;
    changes.retain(|c| {
        if focus.contains(&c.pid) {
            return true;
        }
        others += 1;
        others <= keep
    });
}

/// Rows the timeline holds: past this, its older half is coarsened (two neighbours become
/// one), so a run of days keeps a whole timeline in bounded memory, finer where it is recent.
pub const MAX_INTERVALS: usize = 2048;

/// One interval of the recording (or, once coarsened, several neighbouring ones).
#[derive(Clone, Debug, Default)]
pub struct Interval {
    /// The first and the last sample index it covers, and its CLOCK_MONOTONIC bounds.
    pub index: u64,
    pub last_index: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Stalled time per process (pid, start time), with its name.
    pub stalls: HashMap<(u32, u64), (String, StallNs)>,
    /// kswapd awake time per NUMA node.
    pub kswapd_awake_ns: HashMap<u32, u64>,
    /// kswapd CPU time, all nodes together; `None` when not measured (older recordings).
    pub kswapd_cpu_ns: Option<u64>,
    /// Each zone's free pages against its watermarks (empty in older recordings).
    pub zones: Vec<ZoneSample>,
    /// The zones as the stalls counted in the interval began, by kind of stall.
    pub stall_zones: BTreeMap<StallCategory, StallZones>,
    /// The allocator's fallbacks and the compaction attempts.
    pub allocator: AllocatorEvents,
    /// The processes whose memory moved most, largest change first.
    pub memory: Vec<MemoryChange>,
}

impl Interval {
    /// Length of the interval.
    pub fn len_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Takes in the interval that follows this one.
    fn absorb(&mut self, next: Interval) {
        self.last_index = next.last_index;
        self.end_ns = next.end_ns.max(self.end_ns);
        for (key, (comm, ns)) in next.stalls {
            let slot = self
                .stalls
                .entry(key)
                .or_insert_with(|| (comm, StallNs::default()));
            for (mine, theirs) in slot.1.iter_mut().zip(ns) {
                *mine += theirs;
            }
        }
        for (nid, ns) in next.kswapd_awake_ns {
            *self.kswapd_awake_ns.entry(nid).or_default() += ns;
        }
        if let Some(ns) = next.kswapd_cpu_ns {
            *self.kswapd_cpu_ns.get_or_insert(0) += ns;
        }
        absorb_zones(&mut self.zones, &next.zones);
        for (category, zones) in &next.stall_zones {
            self.stall_zones.entry(*category).or_default().merge(zones);
        }
        self.allocator.merge(&next.allocator);
        for change in next.memory {
            match self
                .memory
                .iter_mut()
                .find(|c| (c.pid, c.start_ns) == (change.pid, change.start_ns))
            {
                Some(mine) => {
                    mine.delta_kb += change.delta_kb;
                    mine.total_kb = change.total_kb;
                }
                None => self.memory.push(change),
            }
        }
    }

    /// Keeps the [`KEEP_PER_INTERVAL`] most stalled processes and the `focus` ones.
    fn keep_most_stalled(&mut self, focus: &[u32]) {
        if self.stalls.len() <= KEEP_PER_INTERVAL {
            return;
        }
        let mut ranked: Vec<((u32, u64), u64)> = self
            .stalls
            .iter()
            .filter(|(key, _)| !focus.contains(&key.0))
            .map(|(key, (_, ns))| (*key, ns.iter().sum()))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (key, _) in ranked.into_iter().skip(KEEP_PER_INTERVAL) {
            self.stalls.remove(&key);
        }
    }
}

/// The intervals folded so far, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    intervals: Vec<Interval>,
}

impl Timeline {
    /// Adds the interval of sample `index`.
    pub fn open(&mut self, index: u64, start_ns: u64, end_ns: u64) {
        self.intervals.push(Interval {
            index,
            last_index: index,
            start_ns,
            end_ns: end_ns.max(start_ns),
            ..Interval::default()
        });
    }

    /// Every interval, oldest first.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// The interval of sample `index`, if it was folded (a report's window may leave it out).
    fn get_mut(&mut self, index: u64) -> Option<&mut Interval> {
        let position = self
            .intervals
            .partition_point(|interval| interval.last_index < index);
        self.intervals
            .get_mut(position)
            .filter(|interval| interval.index <= index)
    }

    /// When the timeline holds more than [`MAX_INTERVALS`], merges neighbouring pairs of its
    /// older half (keeping `focus` pids' stalls); returns the positions merged into their left
    /// neighbour, so the caller can merge what it keeps per interval alike.
    pub fn coarsen(&mut self, focus: &[u32]) -> Vec<usize> {
        if self.intervals.len() <= MAX_INTERVALS {
            return Vec::new();
        }
        let old = std::mem::take(&mut self.intervals);
        let half = old.len() / 2;
        let mut merged = Vec::new();
        let mut iter = old.into_iter().enumerate().peekable();
        while let Some((i, mut interval)) = iter.next() {
            if i < half
                && i % 2 == 0
                && iter.peek().is_some_and(|(j, _)| *j < half)
                && let Some((j, next)) = iter.next()
            {
                interval.absorb(next);
                merged.push(j);
            }
            self.intervals.push(interval);
        }
        for interval in &mut self.intervals {
            interval.keep_most_stalled(focus);
            keep_largest_changes(&mut interval.memory, KEEP_MEMORY_PER_INTERVAL, focus);
        }
        merged
    }

    /// Adds one process's stalled time to its interval.
    pub fn add_stall(&mut self, stall: &StallTime, comm: &str) {
        if let Some(interval) = self.get_mut(stall.interval) {
            let slot = interval
                .stalls
                .entry((stall.pid, stall.start_ns))
                .or_insert_with(|| (comm.to_string(), StallNs::default()));
            for &(category, ns) in &stall.ns {
                slot.1[category as usize] += ns;
            }
        }
    }

    /// Keeps the [`KEEP_PER_INTERVAL`] most stalled processes of each recent interval (and the
    /// `focus` pids): a row shows a few, and thousands of processes stalling at once must not
    /// make the timeline grow with them.
    pub fn trim(&mut self, focus: &[u32]) {
        // Stalls arrive at most a few intervals late: older ones are trimmed already.
        let recent = self.intervals.len().saturating_sub(4);
        for interval in &mut self.intervals[recent..] {
            interval.keep_most_stalled(focus);
        }
    }

    /// Adds kswapd awake time of node `nid` to interval `index`.
    pub fn add_kswapd(&mut self, nid: u32, index: u64, ns: u64) {
        if let Some(interval) = self.get_mut(index) {
            *interval.kswapd_awake_ns.entry(nid).or_default() += ns;
        }
    }

    /// Sets the zones' readings of interval `index`.
    pub fn set_zones(&mut self, index: u64, zones: &[ZoneSample]) {
        if let Some(interval) = self.get_mut(index) {
            absorb_zones(&mut interval.zones, zones);
        }
    }

    /// Sets the memory changes of interval `index`: the largest ones and the `focus` pids'.
    pub fn set_memory(&mut self, index: u64, mut changes: Vec<MemoryChange>, focus: &[u32]) {
        if let Some(interval) = self.get_mut(index) {
            keep_largest_changes(&mut changes, KEEP_MEMORY_PER_INTERVAL, focus);
            interval.memory = changes;
        }
    }

    /// Sets the allocator events of interval `index`.
    pub fn set_allocator(&mut self, index: u64, events: &AllocatorEvents) {
        if let Some(interval) = self.get_mut(index) {
            interval.allocator.merge(events);
        }
    }

    /// Adds the zones as some stalls of `category` began to interval `index`.
    pub fn add_stall_zones(&mut self, index: u64, category: StallCategory, zones: &StallZones) {
        if let Some(interval) = self.get_mut(index) {
            interval
                .stall_zones
                .entry(category)
                .or_default()
                .merge(zones);
        }
    }

    /// Adds kswapd CPU time to interval `index`.
    pub fn add_kswapd_cpu(&mut self, index: u64, ns: u64) {
        if let Some(interval) = self.get_mut(index) {
            *interval.kswapd_cpu_ns.get_or_insert(0) += ns;
        }
    }
}

#[cfg(test)]
mod tests {
    use memtrace_common::{FaultClass, StallKind};

    use super::*;

    fn moved(pid: u32, delta_kb: i64, total_kb: u64) -> MemoryChange {
        MemoryChange {
            pid,
            start_ns: 1,
            comm: format!("p{pid}"),
            total_kb,
            delta_kb,
        }
    }

    #[test]
    fn the_largest_memory_moves_are_kept_either_way_with_the_focus() {
        let mut changes = vec![
            moved(1, 10, 100),
            moved(2, -500, 0),
            moved(3, 300, 900),
            moved(4, 20, 50),
            moved(5, 1, 7),
        ];
        keep_largest_changes(&mut changes, 2, &[5]);
        let kept: Vec<u32> = changes.iter().map(|c| c.pid).collect();
        assert_eq!(kept, [2, 3, 5]);
    }

    #[test]
    fn coarsened_intervals_add_their_memory_moves() {
        let mut timeline = Timeline::default();
        for index in 0..=MAX_INTERVALS as u64 {
            timeline.open(index, index * 10, index * 10 + 10);
        }
        timeline.set_memory(0, vec![moved(1, 100, 1100), moved(2, 5, 10)], &[]);
        timeline.set_memory(1, vec![moved(1, 50, 1150), moved(3, -40, 0)], &[]);
        timeline.coarsen(&[]);
        let first = &timeline.intervals()[0];
        assert_eq!((first.index, first.last_index), (0, 1));
        assert_eq!(first.memory[0], moved(1, 150, 1150));
        assert_eq!(first.memory[1], moved(3, -40, 0));
        assert_eq!(first.memory[2], moved(2, 5, 10));
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn stalls_land_in_the_interval_they_name_even_a_late_one() {
        let mut t = Timeline::default();
        t.open(0, 0, S);
        t.open(1, S, 2 * S);
        let stall = |interval, ns| StallTime {
            interval,
            pid: 7,
            start_ns: 3,
            ns: vec![(StallCategory::MemcgReclaim, ns)],
        };
        t.add_stall(&stall(1, 500), "a");
        t.add_stall(&stall(0, 200), "a");
        t.add_stall(&stall(9, 1), "a");
        let m = StallCategory::MemcgReclaim as usize;
        assert_eq!(t.intervals()[0].stalls[&(7, 3)].1[m], 200);
        assert_eq!(t.intervals()[1].stalls[&(7, 3)].1[m], 500);
        assert_eq!(t.intervals()[1].len_ns(), S);
    }

    #[test]
    fn an_interval_keeps_its_most_stalled_processes_and_the_focus() {
        let mut t = Timeline::default();
        t.open(0, 0, S);
        for pid in 1..=20u32 {
            let stall = StallTime {
                interval: 0,
                pid,
                start_ns: 0,
                ns: vec![(StallCategory::DirectReclaim, u64::from(pid) * 1000)],
            };
            t.add_stall(&stall, "p");
        }
        t.trim(&[2]);
        let mut kept: Vec<u32> = t.intervals()[0].stalls.keys().map(|k| k.0).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![2, 13, 14, 15, 16, 17, 18, 19, 20]);
    }

    #[test]
    fn a_long_timeline_coarsens_its_older_half_and_keeps_every_nanosecond() {
        let mut t = Timeline::default();
        let total = MAX_INTERVALS as u64 + 1;
        for i in 0..total {
            t.open(i, i * S, (i + 1) * S);
            t.add_kswapd(0, i, 1000);
        }
        let merged = t.coarsen(&[]);
        assert_eq!(merged.len(), (total as usize / 2) / 2);
        assert_eq!(t.intervals().len(), total as usize - merged.len());
        let first = &t.intervals()[0];
        assert_eq!(
            (first.index, first.last_index, first.len_ns()),
            (0, 1, 2 * S)
        );
        assert_eq!(first.kswapd_awake_ns[&0], 2000);
        let awake: u64 = t.intervals().iter().map(|i| i.kswapd_awake_ns[&0]).sum();
        assert_eq!(awake, total * 1000);
        // A late stall still finds its (now merged) interval.
        t.add_kswapd(0, 3, 5);
        assert_eq!(t.intervals()[1].kswapd_awake_ns[&0], 2005);
        let last = t.intervals().last().expect("last");
        assert_eq!(
            (last.index, last.last_index),
            (total - 1, total - 1),
            "recent rows stay fine"
        );
    }

    #[test]
    fn a_window_that_starts_later_drops_earlier_parts() {
        let mut t = Timeline::default();
        t.open(5, 5 * S, 6 * S);
        t.add_kswapd(0, 4, 100);
        t.add_kswapd(0, 5, 300);
        assert_eq!(t.intervals()[0].kswapd_awake_ns[&0], 300);
    }

    #[test]
    fn categories_of_stalls_and_faults() {
        assert_eq!(
            StallCategory::of_stall(StallKind::MemcgSoftLimit),
            StallCategory::MemcgReclaim
        );
        assert_eq!(StallCategory::of_fault(FaultClass::Minor), None);
        assert_eq!(
            StallCategory::of_fault(FaultClass::MajorSwap),
            Some(StallCategory::SwapIn)
        );
    }
}
