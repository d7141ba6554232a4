//! A zone's free pages against its watermarks over an interval: kswapd wakes when free falls
//! below `low` and sleeps above `high`; an allocation that finds free below `min` reclaims
//! directly. Sampled from /proc/zoneinfo several times an interval, so the lowest free of the
//! interval is kept, not only its end.
use memtrace_common::zone_state;
use serde::{Deserialize, Serialize};

/// One zone of one NUMA node over an interval, in pages. The watermarks are the kernel's
/// (`min_wmark_pages()` and the others), which include the boost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZoneSample {
    pub node: u32,
    /// `DMA`, `DMA32`, `Normal`, `Movable`, ...
    pub zone: String,
    /// Free pages at the last reading.
    pub free_pages: u64,
    /// The lowest free pages read over the interval.
    pub lowest_free_pages: u64,
    /// Watermarks at the last reading, and the boost in them (`None`: the kernel has none).
    pub min_pages: u64,
    pub low_pages: u64,
    pub high_pages: u64,
    pub boost_pages: Option<u64>,
    /// The reading nearest to `min` (or furthest under it): its free pages and its `min`, as
    /// they were then (the watermarks move: the boost, a changed min_free_kbytes).
    pub tightest_free_pages: u64,
    pub tightest_min_pages: u64,
    /// Readings over the interval, and how many found free below `low` and below `min`.
    pub readings: u32,
    pub below_low: u32,
    pub below_min: u32,
    /// Free blocks per order (index = order) at the last reading, from /proc/buddyinfo.
    pub free_blocks: Vec<u64>,
    /// The largest order with a free block at the last reading, and the smallest such order
    /// over the interval's readings (`None`: no free block, or no buddyinfo).
    pub largest_free_order: Option<u32>,
    pub lowest_largest_free_order: Option<u32>,
}

/// The smaller of two orders, either of which may be missing.
pub fn lower_order(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The largest order with a free block.
pub fn largest_free_order(free_blocks: &[u64]) -> Option<u32> {
    free_blocks
        .iter()
        .rposition(|&n| n > 0)
        .map(|order| order as u32)
}

/// The unusable free space index of an allocation of `order` (the kernel's
/// `unusable_free_index()`, debugfs extfrag/unusable_index): the share of free pages in blocks
/// too small for it, 0 (all of it usable) to 1 (none). `None` with no free page.
pub fn unusable_index(free_blocks: &[u64], order: u32) -> Option<f64> {
    let pages = |(i, &n): (usize, &u64)| n << i;
    let free: u64 = free_blocks.iter().enumerate().map(pages).sum();
    let usable: u64 = free_blocks
        .iter()
        .enumerate()
        .skip(order as usize)
        .map(pages)
        .sum();
    (free > 0).then(|| (free - usable) as f64 / free as f64)
}

impl ZoneSample {
    /// Keeps `free` and `min` of one reading as the tightest if they are (or if nothing was
    /// read before): call it before counting the reading.
    pub fn note_tightest(&mut self, free: u64, min: u64) {
        let headroom = |free: u64, min: u64| i128::from(free) - i128::from(min);
        if self.readings == 0
            || headroom(free, min) < headroom(self.tightest_free_pages, self.tightest_min_pages)
        {
            self.tightest_free_pages = free;
            self.tightest_min_pages = min;
        }
    }

    /// Takes in the same zone's sample of the interval that follows.
    pub fn absorb(&mut self, next: &ZoneSample) {
        if next.readings > 0 {
            self.note_tightest(next.tightest_free_pages, next.tightest_min_pages);
        }
        self.lowest_free_pages = self.lowest_free_pages.min(next.lowest_free_pages);
        self.free_pages = next.free_pages;
        self.min_pages = next.min_pages;
        self.low_pages = next.low_pages;
        self.high_pages = next.high_pages;
        self.boost_pages = next.boost_pages;
        self.readings += next.readings;
        self.below_low += next.below_low;
        self.below_min += next.below_min;
        self.free_blocks.clone_from(&next.free_blocks);
        self.largest_free_order = next.largest_free_order;
        self.lowest_largest_free_order = lower_order(
            self.lowest_largest_free_order,
            next.lowest_largest_free_order,
        );
    }
}

/// Merges `next` into `zones`, zone by zone (a zone new in `next` is added).
pub fn absorb_zones(zones: &mut Vec<ZoneSample>, next: &[ZoneSample]) {
    for sample in next {
        match zones
            .iter_mut()
            .find(|z| z.node == sample.node && z.zone == sample.zone)
        {
            Some(zone) => zone.absorb(sample),
            None => zones.push(sample.clone()),
        }
    }
}

/// The zones as a set of stalls began, read in the kernel at each one (the local node's
/// zones; see `memtrace_common::zone_state`). Recordings made before memtrace read them have
/// `read` 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StallZones {
    /// Stalls whose zones were read.
    pub read: u64,
    /// Of those, stalls that began with a zone under its `min` watermark, and (of the others)
    /// with a zone under `low`.
    pub under_min: u64,
    pub under_low: u64,
    /// The zones found under `min` (bit = zone index).
    pub min_zones: u32,
    /// The smallest and the largest of the highest zone's largest free orders at the stalls'
    /// starts (`None`: none read).
    pub lowest_largest_free_order: Option<u32>,
    pub highest_largest_free_order: Option<u32>,
    /// The allocation orders that stalled (bit = order), where stalls of several orders are
    /// merged (a timeline interval); 0 in a single allocation's, whose order is its own.
    pub orders: u32,
}

impl StallZones {
    /// The same stalls, marked as of allocations of `order` (orders above 31 or unknown are
    /// left unmarked).
    pub fn of_order(mut self, order: i32) -> Self {
        if let Ok(order @ 0..32) = u32::try_from(order) {
            self.orders |= 1 << order;
        }
        self
    }

    /// The highest order that stalled, if marked.
    pub fn highest_order(&self) -> Option<u32> {
        self.orders.checked_ilog2()
    }

    /// Adds one stall's `zone_state` word.
    pub fn add_word(&mut self, word: u32) {
        if zone_state::read(word) == 0 {
            return;
        }
        self.read += 1;
        let min = zone_state::under_min(word);
        if min != 0 {
            self.under_min += 1;
            self.min_zones |= u32::from(min);
        } else if zone_state::under_low(word) != 0 {
            self.under_low += 1;
        }
        let order = zone_state::largest_free_order(word);
        self.lowest_largest_free_order = lower_order(self.lowest_largest_free_order, order);
        self.highest_largest_free_order = self.highest_largest_free_order.max(order);
    }

    /// Adds another set of stalls.
    pub fn merge(&mut self, other: &Self) {
        self.read += other.read;
        self.under_min += other.under_min;
        self.under_low += other.under_low;
        self.min_zones |= other.min_zones;
        self.orders |= other.orders;
        self.lowest_largest_free_order = lower_order(
            self.lowest_largest_free_order,
            other.lowest_largest_free_order,
        );
        self.highest_largest_free_order = self
            .highest_largest_free_order
            .max(other.highest_largest_free_order);
    }
}

/// Page-allocator events of an interval counted in the kernel (machine-wide, except the
/// compaction attempts, which are the traced tasks').
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocatorEvents {
    /// `mm_page_alloc_extfrag` events by the order of the block taken from another migrate
    /// type (the last entry counts every larger order too).
    pub extfrag_by_order: Vec<u64>,
    /// Direct-compaction attempts, skipped ones included (the kernel counts a stall only
    /// for attempts that were not skipped).
    pub compaction_attempts: u64,
    /// kcompactd's runs (`mm_compaction_kcompactd_wake`) and CPU time, all nodes (`None`: not
    /// measured, in older recordings).
    pub kcompactd_wakes: u64,
    pub kcompactd_cpu_ns: Option<u64>,
}

impl AllocatorEvents {
    /// Fallbacks that took a block smaller than a pageblock: each mixes migrate types inside
    /// a pageblock (the kernel's `fragmenting` in the event), the kind that makes high-order
    /// allocations fail later.
    pub fn fragmenting(&self, pageblock_order: u32) -> u64 {
        self.extfrag_by_order
            .iter()
            .take(pageblock_order as usize)
            .sum()
    }

    pub fn extfrag(&self) -> u64 {
        self.extfrag_by_order.iter().sum()
    }

    /// Adds another interval's events.
    pub fn merge(&mut self, other: &Self) {
        if self.extfrag_by_order.len() < other.extfrag_by_order.len() {
            self.extfrag_by_order
                .resize(other.extfrag_by_order.len(), 0);
        }
        for (mine, theirs) in self
            .extfrag_by_order
            .iter_mut()
            .zip(&other.extfrag_by_order)
        {
            *mine += theirs;
        }
        self.compaction_attempts += other.compaction_attempts;
        self.kcompactd_wakes += other.kcompactd_wakes;
        if let Some(ns) = other.kcompactd_cpu_ns {
            *self.kcompactd_cpu_ns.get_or_insert(0) += ns;
        }
    }

    /// The events between two readings of the kernel's cumulative counters (`VM_COUNTS`).
    pub fn between(before: &[u64], now: &[u64]) -> Self {
        use memtrace_common::vm_count::{
            COMPACT_ATTEMPTS, EXTFRAG, EXTFRAG_ORDERS, KCOMPACTD_WAKES,
        };
        let delta = |i: u32| {
            let i = i as usize;
            now.get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(i).copied().unwrap_or(0))
        };
        let mut extfrag_by_order: Vec<u64> =
            (EXTFRAG..EXTFRAG + EXTFRAG_ORDERS).map(delta).collect();
        while extfrag_by_order.last() == Some(&0) {
            extfrag_by_order.pop();
        }
        Self {
            extfrag_by_order,
            compaction_attempts: delta(COMPACT_ATTEMPTS),
            kcompactd_wakes: delta(KCOMPACTD_WAKES),
            kcompactd_cpu_ns: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_zones_sort_each_stall_by_its_worst_zone() {
        use zone_state::{ORDER_SHIFT, READ_SHIFT, UNDER_LOW_SHIFT, UNDER_MIN_SHIFT};
        // DMA32 (1) and Normal (2) read; Normal under low and min; largest free order 3.
        let under_min = (0b110 << READ_SHIFT)
            | (0b100 << UNDER_LOW_SHIFT)
            | (0b100 << UNDER_MIN_SHIFT)
            | (4 << ORDER_SHIFT);
        // Normal under low only; largest free order 8.
        let under_low = (0b110 << READ_SHIFT) | (0b100 << UNDER_LOW_SHIFT) | (9 << ORDER_SHIFT);
        // Everything above low; no free block at all.
        let above = 0b110 << READ_SHIFT;
        let mut zones = StallZones::default();
        for word in [under_min, under_low, above, 0] {
            zones.add_word(word);
        }
        assert_eq!(
            zones,
            StallZones {
                read: 3,
                under_min: 1,
                under_low: 1,
                min_zones: 0b100,
                lowest_largest_free_order: Some(3),
                highest_largest_free_order: Some(8),
                orders: 0,
            }
        );
        let mut merged = StallZones::default();
        merged.merge(&zones.of_order(0));
        merged.merge(&zones.of_order(9));
        assert_eq!(merged.highest_order(), Some(9));
        assert_eq!(StallZones::default().highest_order(), None);
        assert_eq!(
            zones.of_order(-1).orders,
            0,
            "an unknown order marks nothing"
        );
        assert_eq!((merged.read, merged.under_min, merged.min_zones), (6, 2, 4));
    }

    #[test]
    fn allocator_events_are_differences_of_the_kernel_counters() {
        use memtrace_common::vm_count::{COMPACT_ATTEMPTS, SLOTS};
        let before = vec![0u64; SLOTS as usize];
        let mut now = before.clone();
        now[0] = 5; // order 0
        now[3] = 2; // order 3
        now[9] = 1; // order 9: a whole pageblock
        now[COMPACT_ATTEMPTS as usize] = 7;
        now[memtrace_common::vm_count::KCOMPACTD_WAKES as usize] = 2;
        let events = AllocatorEvents::between(&before, &now);
        assert_eq!(events.kcompactd_wakes, 2);
        assert_eq!(events.extfrag_by_order, vec![5, 0, 0, 2, 0, 0, 0, 0, 0, 1]);
        assert_eq!((events.extfrag(), events.fragmenting(9)), (8, 7));
        assert_eq!(events.compaction_attempts, 7);
        let mut sum = AllocatorEvents::default();
        sum.merge(&events);
        sum.merge(&AllocatorEvents::between(&now, &now));
        assert_eq!(sum, events);
    }

    fn zone(lowest: u64, free: u64, below_low: u32, below_min: u32) -> ZoneSample {
        ZoneSample {
            node: 0,
            zone: "Normal".into(),
            free_pages: free,
            lowest_free_pages: lowest,
            min_pages: 100,
            low_pages: 125,
            high_pages: 150,
            boost_pages: Some(0),
            readings: 10,
            below_low,
            below_min,
            ..ZoneSample::default()
        }
    }

    #[test]
    fn unusable_index_and_largest_order() {
        // 4 single pages, 2 order-1 blocks (4 pages), 1 order-3 block (8 pages): 16 free.
        let blocks = [4, 2, 0, 1, 0];
        assert_eq!(largest_free_order(&blocks), Some(3));
        assert_eq!(largest_free_order(&[0, 0]), None);
        assert_eq!(unusable_index(&blocks, 0), Some(0.0));
        assert_eq!(unusable_index(&blocks, 1), Some(4.0 / 16.0));
        assert_eq!(unusable_index(&blocks, 2), Some(8.0 / 16.0));
        assert_eq!(unusable_index(&blocks, 3), Some(8.0 / 16.0));
        assert_eq!(unusable_index(&blocks, 4), Some(1.0));
        assert_eq!(unusable_index(&[0, 0], 0), None);
    }

    #[test]
    fn merged_intervals_keep_the_lowest_and_the_last() {
        let mut zones = vec![zone(90, 400, 3, 1)];
        absorb_zones(&mut zones, &[zone(120, 300, 2, 0)]);
        assert_eq!(zones.len(), 1);
        let merged = &zones[0];
        assert_eq!((merged.lowest_free_pages, merged.free_pages), (90, 300));
        assert_eq!(
            (merged.readings, merged.below_low, merged.below_min),
            (20, 5, 1)
        );
        let other = ZoneSample {
            zone: "DMA32".into(),
            ..zone(1, 2, 0, 0)
        };
        absorb_zones(&mut zones, &[other]);
        assert_eq!(zones.len(), 2);
    }
}
