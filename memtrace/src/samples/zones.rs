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
        }
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
