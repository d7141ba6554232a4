//! A zone's free pages against its watermarks over an interval: kswapd wakes when free falls
//! below `low` and sleeps above `high`; an allocation that finds free below `min` reclaims
//! directly. Sampled from /proc/zoneinfo several times an interval, so the lowest free of the
//! interval is kept, not only its end.
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
    /// Takes in the same zone's sample of the interval that follows.
    pub fn absorb(&mut self, next: &ZoneSample) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
