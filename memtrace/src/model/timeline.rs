//! Time split into the recording's intervals: how much of each interval a process spent
//! stalled, by kind, and how long kswapd was awake. Stalls arrive already split at the
//! interval boundaries (by `collect`), tagged with the interval they belong to.
use std::collections::HashMap;

pub use crate::samples::StallCategory;
use crate::samples::{STALL_CATEGORIES, StallTime};

/// Number of categories.
pub const CATEGORIES: usize = STALL_CATEGORIES;

/// Stalled time of one process in one interval, by category.
pub type StallNs = [u64; CATEGORIES];

/// One interval of the recording.
#[derive(Clone, Debug, Default)]
pub struct Interval {
    /// The sample's index, and its CLOCK_MONOTONIC bounds.
    pub index: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Stalled time per process.
    pub stalls: HashMap<u32, StallNs>,
    /// kswapd awake time per NUMA node.
    pub kswapd_awake_ns: HashMap<u32, u64>,
}

impl Interval {
    /// Length of the interval.
    pub fn len_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
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
        let first = self.intervals.first()?.index;
        let position = usize::try_from(index.checked_sub(first)?).ok()?;
        self.intervals
            .get_mut(position)
            .filter(|interval| interval.index == index)
    }

    /// Adds one process's stalled time to its interval.
    pub fn add_stall(&mut self, stall: &StallTime) {
        if let Some(interval) = self.get_mut(stall.interval) {
            let slot = interval.stalls.entry(stall.pid).or_default();
            for &(category, ns) in &stall.ns {
                slot[category as usize] += ns;
            }
        }
    }

    /// Adds kswapd awake time of node `nid` to interval `index`.
    pub fn add_kswapd(&mut self, nid: u32, index: u64, ns: u64) {
        if let Some(interval) = self.get_mut(index) {
            *interval.kswapd_awake_ns.entry(nid).or_default() += ns;
        }
    }
}

#[cfg(test)]
mod tests {
    use memtrace_common::{FaultClass, StallKind};

    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn stalls_land_in_the_interval_they_name_even_a_late_one() {
        let mut t = Timeline::default();
        t.open(0, 0, S);
        t.open(1, S, 2 * S);
        let stall = |interval, ns| StallTime {
            interval,
            pid: 7,
            ns: vec![(StallCategory::MemcgReclaim, ns)],
        };
        t.add_stall(&stall(1, 500));
        t.add_stall(&stall(0, 200));
        t.add_stall(&stall(9, 1));
        let m = StallCategory::MemcgReclaim as usize;
        assert_eq!(t.intervals()[0].stalls[&7][m], 200);
        assert_eq!(t.intervals()[1].stalls[&7][m], 500);
        assert_eq!(t.intervals()[1].len_ns(), S);
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
