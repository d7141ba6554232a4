//! Reads /proc/zoneinfo several times an interval and keeps, per zone, the lowest free pages
//! and how often free was below the `low` and `min` watermarks (see `samples::zones`). A
//! reading costs ~0.1 ms; the watermarks move only with the tunables and the boost.
use std::collections::BTreeMap;

use super::procfs::{ZoneInfo, parse_zoneinfo};
use crate::samples::zones::ZoneSample;

/// How often the zones are read.
pub const READ_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The zones read since the interval began.
#[derive(Default)]
pub struct ZoneWatch {
    zones: BTreeMap<(u32, String), ZoneSample>,
}

impl ZoneWatch {
    /// Reads /proc/zoneinfo now (nothing when it can't be read).
    pub fn read(&mut self) {
        if let Ok(text) = std::fs::read_to_string("/proc/zoneinfo") {
            self.add(&parse_zoneinfo(&text));
        }
    }

    /// Takes in one reading of every zone.
    pub fn add(&mut self, reading: &[ZoneInfo]) {
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
        assert!(watch.close().is_empty(), "each interval starts empty");
    }
}
