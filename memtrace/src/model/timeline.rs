//! Time split into recording intervals: how much of each interval a process spent stalled, by
//! kind, and the machine's context for the interval. A stall that spans intervals is split
//! between them at the boundaries.
use std::collections::HashMap;

use memtrace_common::{FaultClass, StallKind};

/// The kinds of stall the timeline shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StallCategory {
    DirectReclaim,
    MemcgReclaim,
    NodeReclaim,
    Compaction,
    Throttle,
    SwapIn,
    MajorFault,
}

/// Number of categories.
pub const CATEGORIES: usize = 7;

impl StallCategory {
    /// Every category, in display order.
    pub const ALL: [Self; CATEGORIES] = [
        Self::DirectReclaim,
        Self::MemcgReclaim,
        Self::NodeReclaim,
        Self::Compaction,
        Self::Throttle,
        Self::SwapIn,
        Self::MajorFault,
    ];

    /// The category of a reclaim or compaction stall (soft-limit reclaim is memcg reclaim).
    pub fn of_stall(kind: StallKind) -> Self {
        match kind {
            StallKind::DirectReclaim => Self::DirectReclaim,
            StallKind::MemcgReclaim | StallKind::MemcgSoftLimit => Self::MemcgReclaim,
            StallKind::NodeReclaim => Self::NodeReclaim,
            StallKind::Throttle => Self::Throttle,
            StallKind::Compaction => Self::Compaction,
        }
    }

    /// The category of a fault, if it counts as a stall (minor faults do not).
    pub fn of_fault(class: FaultClass) -> Option<Self> {
        match class {
            FaultClass::Minor => None,
            FaultClass::MajorFile => Some(Self::MajorFault),
            FaultClass::MajorSwap => Some(Self::SwapIn),
        }
    }

    /// Short name for tables.
    pub fn short(self) -> &'static str {
        match self {
            Self::DirectReclaim => "direct",
            Self::MemcgReclaim => "memcg",
            Self::NodeReclaim => "node",
            Self::Compaction => "compact",
            Self::Throttle => "throttle",
            Self::SwapIn => "swapin",
            Self::MajorFault => "majflt",
        }
    }
}

/// Stalled time of one process in one interval, by category.
pub type StallNs = [u64; CATEGORIES];

/// One interval of the recording.
#[derive(Clone, Debug, Default)]
pub struct Interval {
    /// CLOCK_MONOTONIC bounds; `end_ns` is 0 while the interval is open.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Stalled time per process.
    pub stalls: HashMap<u32, StallNs>,
    /// kswapd busy time per NUMA node.
    pub kswapd_busy_ns: HashMap<u32, u64>,
}

impl Interval {
    /// Length of a closed interval.
    pub fn len_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// The intervals so far; the last one is open.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    intervals: Vec<Interval>,
}

impl Timeline {
    /// A timeline whose first interval starts at `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        Self {
            intervals: vec![Interval {
                start_ns,
                ..Interval::default()
            }],
        }
    }

    /// Closes the open interval at `end_ns` and opens the next one.
    pub fn close(&mut self, end_ns: u64) {
        if let Some(open) = self.intervals.last_mut() {
            open.end_ns = end_ns.max(open.start_ns);
        }
        self.intervals.push(Interval {
            start_ns: end_ns,
            ..Interval::default()
        });
    }

    /// Closed intervals, oldest first.
    pub fn closed(&self) -> &[Interval] {
        let n = self.intervals.len().saturating_sub(1);
        &self.intervals[..n]
    }

    /// Adds `[start_ns, start_ns + len_ns)` of stall to `pid`, split across intervals.
    pub fn add_stall(&mut self, pid: u32, category: StallCategory, start_ns: u64, len_ns: u64) {
        self.split(start_ns, len_ns, |interval, ns| {
            interval.stalls.entry(pid).or_default()[category as usize] += ns;
        });
    }

    /// Adds kswapd busy time of node `nid`, split across intervals.
    pub fn add_kswapd_busy(&mut self, nid: u32, start_ns: u64, len_ns: u64) {
        self.split(start_ns, len_ns, |interval, ns| {
            *interval.kswapd_busy_ns.entry(nid).or_default() += ns;
        });
    }

    /// Calls `add(interval, overlap_ns)` for every interval the span overlaps. The part before
    /// the first interval is dropped; the open interval takes everything after its start.
    fn split(&mut self, start_ns: u64, len_ns: u64, mut add: impl FnMut(&mut Interval, u64)) {
        let end_ns = start_ns.saturating_add(len_ns);
        let count = self.intervals.len();
        for (i, interval) in self.intervals.iter_mut().enumerate().rev() {
            let hi = if i + 1 == count {
                u64::MAX
            } else {
                interval.end_ns
            };
            let overlap = end_ns
                .min(hi)
                .saturating_sub(start_ns.max(interval.start_ns));
            if overlap > 0 {
                add(interval, overlap);
            }
            if interval.start_ns <= start_ns {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_stall_spanning_two_intervals_is_split_at_the_boundary() {
        let mut t = Timeline::new(0);
        t.close(S);
        // 0.8 s .. 1.5 s: 0.2 s in the first interval, 0.5 s in the open one.
        t.add_stall(7, StallCategory::MemcgReclaim, 800_000_000, 700_000_000);
        t.close(2 * S);
        let closed = t.closed();
        assert_eq!(
            closed[0].stalls[&7][StallCategory::MemcgReclaim as usize],
            200_000_000
        );
        assert_eq!(
            closed[1].stalls[&7][StallCategory::MemcgReclaim as usize],
            500_000_000
        );
    }

    #[test]
    fn the_part_before_the_recording_is_dropped_and_the_open_interval_takes_the_rest() {
        let mut t = Timeline::new(10 * S);
        t.add_stall(1, StallCategory::DirectReclaim, 9 * S, 2 * S);
        t.close(12 * S);
        assert_eq!(
            t.closed()[0].stalls[&1][StallCategory::DirectReclaim as usize],
            S
        );
    }

    #[test]
    fn a_span_over_three_intervals_fills_the_middle_one() {
        let mut t = Timeline::new(0);
        t.close(S);
        t.close(2 * S);
        t.add_kswapd_busy(0, S / 2, 2 * S);
        t.close(3 * S);
        let busy: Vec<u64> = t
            .closed()
            .iter()
            .map(|i| i.kswapd_busy_ns.get(&0).copied().unwrap_or(0))
            .collect();
        assert_eq!(busy, vec![S / 2, S, S / 2]);
        assert_eq!(t.closed()[1].len_ns(), S);
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
