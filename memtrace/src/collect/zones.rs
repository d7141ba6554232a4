//! Reads /proc/zoneinfo and /proc/buddyinfo several times an interval and keeps, per zone, the
//! lowest free pages, how often free was below the `low` and `min` watermarks, and the free
//! blocks per order (see `samples::zones`). A reading costs ~0.1 ms.
use std::collections::BTreeMap;

use super::procfs::{ZoneInfo, parse_buddyinfo, parse_zoneinfo};
use crate::samples::zones::{ZoneSample, largest_free_order, lower_order};

/// How often the zones are read.
pub const READ_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// One reading of /proc/zoneinfo and /proc/buddyinfo.
#[derive(Clone, Debug, Default)]
pub struct ZoneReading {
    pub zones: Vec<ZoneInfo>,
    /// Free blocks per order, by node and zone.
    pub blocks: Vec<(u32, String, Vec<u64>)>,
}

/// Reads both files now (a file that can't be read gives nothing).
pub fn read() -> ZoneReading {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    ZoneReading {
        zones: parse_zoneinfo(&read("/proc/zoneinfo")),
        blocks: parse_buddyinfo(&read("/proc/buddyinfo")),
    }
}

/// The zones read since the interval began.
#[derive(Default)]
pub struct ZoneWatch {
    zones: BTreeMap<(u32, String), ZoneSample>,
}

impl ZoneWatch {
    /// Takes in one reading.
    pub fn add_reading(&mut self, reading: &ZoneReading) {
        self.add(&reading.zones);
        self.add_blocks(&reading.blocks);
    }

    /// Takes in one reading of /proc/buddyinfo (zones not in /proc/zoneinfo are left out).
    fn add_blocks(&mut self, reading: &[(u32, String, Vec<u64>)]) {
        for (node, zone, blocks) in reading {
            let Some(sample) = self.zones.get_mut(&(*node, zone.clone())) else {
                continue;
            };
            let largest = largest_free_order(blocks);
            sample.largest_free_order = largest;
            sample.lowest_largest_free_order =
                lower_order(sample.lowest_largest_free_order, largest);
            sample.free_blocks.clone_from(blocks);
        }
    }

    /// Takes in one reading of every zone.
    fn add(&mut self, reading: &[ZoneInfo]) {
        for zone in reading {
            let sample = self
                .zones
                .entry((zone.node, zone.zone.clone()))
                .or_insert_with(|| ZoneSample {
                    node: zone.node,
                    zone: zone.zone.clone(),
                    lowest_free_pages: u64::MAX,
                    ..ZoneSample::default()
                });
            // The reading nearest to (or furthest under) min, free and min as they were then:
            // the watermarks move (the boost, a changed min_free_kbytes).
            sample.note_tightest(zone.free, zone.min);
            sample.free_pages = zone.free;
            sample.lowest_free_pages = sample.lowest_free_pages.min(zone.free);
            sample.min_pages = zone.min;
            sample.low_pages = zone.low;
            sample.high_pages = zone.high;
            sample.boost_pages = zone.boost;
            sample.readings += 1;
            sample.below_low += u32::from(zone.free < zone.low);
            sample.below_min += u32::from(zone.free < zone.min);
        }
    }

    /// The interval's zones; the next interval starts empty.
    pub fn close(&mut self) -> Vec<ZoneSample> {
        std::mem::take(&mut self.zones).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(free: u64) -> ZoneInfo {
        ZoneInfo {
            node: 0,
            zone: "Normal".into(),
            free,
            min: 100,
            low: 125,
            high: 150,
            boost: Some(0),
            managed: 10_000,
        }
    }

    #[test]
    fn the_lowest_reading_and_the_crossings_are_kept() {
        let mut watch = ZoneWatch::default();
        for free in [400, 120, 90, 130, 300] {
            watch.add(&[normal(free)]);
        }
        let zones = watch.close();
        assert_eq!(zones.len(), 1);
        let zone = &zones[0];
        assert_eq!((zone.free_pages, zone.lowest_free_pages), (300, 90));
        assert_eq!((zone.readings, zone.below_low, zone.below_min), (5, 2, 1));
        assert_eq!(
            (zone.tightest_free_pages, zone.tightest_min_pages),
            (90, 100)
        );
        assert!(watch.close().is_empty(), "each interval starts empty");
    }

    #[test]
    fn the_tightest_reading_keeps_its_own_min_when_the_watermarks_move() {
        let mut watch = ZoneWatch::default();
        // min raised to 1 000 (free 900 under it), then back to 100 while free fell to 500.
        watch.add(&[ZoneInfo {
            min: 1000,
            ..normal(900)
        }]);
        watch.add(&[normal(500)]);
        let zones = watch.close();
        assert_eq!((zones[0].lowest_free_pages, zones[0].min_pages), (500, 100));
        assert_eq!(
            (zones[0].tightest_free_pages, zones[0].tightest_min_pages),
            (900, 1000)
        );
    }

    #[test]
    fn free_blocks_follow_the_last_reading_and_the_lowest_largest_order() {
        let mut watch = ZoneWatch::default();
        watch.add(&[normal(400)]);
        watch.add_blocks(&[(0, "Normal".into(), vec![3, 0, 1, 0])]);
        watch.add_blocks(&[(0, "Normal".into(), vec![3, 1, 0, 0])]);
        watch.add_blocks(&[(0, "Normal".into(), vec![1, 0, 0, 2])]);
        watch.add_blocks(&[(0, "Movable".into(), vec![9])]);
        let zones = watch.close();
        assert_eq!(zones.len(), 1, "a zone only buddyinfo names is left out");
        assert_eq!(zones[0].free_blocks, [1, 0, 0, 2]);
        assert_eq!(zones[0].largest_free_order, Some(3));
        assert_eq!(zones[0].lowest_largest_free_order, Some(1));
    }
}
