//! Why reclaim ran, for each flagged interval: a one-paragraph verdict from the facts the
//! interval holds (the processes' stall kinds, each zone's free pages against its watermarks
//! and its largest free block, kswapd's CPU), naming them. The rules:
//!
//! - direct reclaim or compaction while a zone's free fell under `min`: **watermarks** (the
//!   allocations outpaced kswapd);
//! - direct reclaim or compaction while every zone stayed above `low`: **fragmentation** (the
//!   free memory was there, in blocks too small for high-order allocations);
//! - memcg reclaim while every zone stayed above `low`: **memcg limit** (the cgroup's limit,
//!   not the machine's memory).
//!
//! Intervals without zone readings (recordings made before memtrace read them) get none.
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::{timeline::TimelineRow, units};
use crate::samples::{
    StallCategory,
    host::Tunables,
    zones::{ZoneSample, unusable_index},
};

/// The page size when a recording does not say (x86-64's, where memtrace's fault hooks exist).
const DEFAULT_PAGE: u64 = 4096;

/// What the facts point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Watermarks,
    Fragmentation,
    MemcgLimit,
}

impl Cause {
    /// Its name, as JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Watermarks => "watermarks",
            Self::Fragmentation => "fragmentation",
            Self::MemcgLimit => "memcg_limit",
        }
    }
}

/// One flagged interval's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The interval's start, in seconds since the recording started.
    pub start_s: f64,
    pub cause: Cause,
    /// The paragraph, with the facts it rests on.
    pub text: String,
}

/// The verdicts of the flagged intervals, in time order; `page_size` is the recorded machine's
/// (0: unknown).
pub fn verdicts(rows: &[TimelineRow], tunables: &Tunables, page_size: u64) -> Vec<Verdict> {
    let page = if page_size > 0 {
        page_size
    } else {
        DEFAULT_PAGE
    };
    let pages = |n: u64| units::bytes(n * page);
    rows.iter()
        .filter(|row| row.flagged && !row.zones.is_empty())
        .filter_map(|row| verdict(row, tunables, &pages))
        .collect()
}

fn verdict(
    row: &TimelineRow,
    tunables: &Tunables,
    pages: &dyn Fn(u64) -> String,
) -> Option<Verdict> {
    let stalled = |category| {
        row.processes
            .iter()
            .any(|p| p.by_kind.get(&category).is_some_and(|&pct| pct > 0.0))
    };
    let direct: Vec<&str> = [
        (StallCategory::DirectReclaim, "direct reclaim"),
        (StallCategory::Compaction, "direct compaction"),
    ]
    .into_iter()
    .filter(|&(category, _)| stalled(category))
    .map(|(_, name)| name)
    .collect();
    let memcg = stalled(StallCategory::MemcgReclaim);
    let under_min = row
        .zones
        .iter()
        .filter(|z| z.below_min > 0)
        .min_by_key(|z| z.lowest_free_pages);
    let all_above_low = row.zones.iter().all(|z| z.below_low == 0);
    let kswapd = row.kswapd_cpu_pct.map_or(String::new(), |pct| {
        format!("; kswapd used {pct:.0} % of a CPU")
    });
    let (cause, text) = if !direct.is_empty()
        && let Some(zone) = under_min
    {
        let scale = tunables
            .watermark_scale_factor
            .map_or(String::new(), |f| format!(" (now {f})"));
        (
            Cause::Watermarks,
            format!(
                "{}: {} free fell under min ({} < {}) in {} of {} readings{kswapd}. Allocations \
                 outpaced kswapd; raising vm.watermark_scale_factor{scale} wakes it earlier, \
                 vm.min_free_kbytes keeps more in reserve.",
                direct.join(" and "),
                zone_name(zone),
                pages(zone.lowest_free_pages),
                pages(zone.min_pages),
                zone.below_min,
                zone.readings
            ),
        )
    } else if !direct.is_empty() && all_above_low {
        let zone = row
            .zones
            .iter()
            .filter(|z| z.lowest_largest_free_order.is_some())
            .min_by_key(|z| (z.lowest_largest_free_order, u64::MAX - z.lowest_free_pages))?;
        let order = zone.lowest_largest_free_order?;
        // How much of the free memory no larger allocation could use, at the last reading.
        let unusable = unusable_index(&zone.free_blocks, order + 1).map_or(String::new(), |i| {
            format!(
                "; at the interval's last reading {:.1} % of its free memory was in blocks \
                 below order {}",
                i * 100.0,
                order + 1
            )
        });
        (
            Cause::Fragmentation,
            format!(
                "{} with every zone above its low watermark: {} had at least {} free (low {}) \
                 but its largest free block fell to order {order} ({}){unusable}. High-order \
                 allocations found no block large enough in fragmented free memory{kswapd}.",
                direct.join(" and "),
                zone_name(zone),
                pages(zone.lowest_free_pages),
                pages(zone.low_pages),
                pages(1 << order)
            ),
        )
    } else if memcg && direct.is_empty() && all_above_low {
        // The tightest zone: least free against its low watermark.
        let zone = row.zones.iter().min_by(|a, b| {
            let room = |z: &ZoneSample| z.lowest_free_pages as f64 / z.low_pages.max(1) as f64;
            room(a).total_cmp(&room(b))
        })?;
        (
            Cause::MemcgLimit,
            format!(
                "memcg reclaim with every zone above its low watermark ({} at least {} free, \
                 low {}): the memory cgroup's limit, not the machine's memory. Raise the \
                 cgroup's limit or shrink what it holds.",
                zone_name(zone),
                pages(zone.lowest_free_pages),
                pages(zone.low_pages)
            ),
        )
    } else {
        return None;
    };
    Some(Verdict {
        start_s: row.start_s,
        cause,
        text,
    })
}

/// A zone's name as text shows it (a recording's strings are escaped, like every name).
fn zone_name(zone: &ZoneSample) -> String {
    format!("node {} {}", zone.node, units::printable(&zone.zone))
}

/// Writes the verdicts, one paragraph each (nothing without any).
pub fn write(verdicts: &[Verdict], out: &mut impl Write) -> io::Result<()> {
    if verdicts.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nwhy reclaim ran (flagged intervals):")?;
    for v in verdicts {
        writeln!(out, "  {:>6.1}s  {}", v.start_s, v.text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{model::machine::MachineInterval, report::timeline::ProcessShare};

    fn zone(lowest: u64, below_low: u32, below_min: u32, order: u32) -> ZoneSample {
        ZoneSample {
            node: 0,
            zone: "Normal".into(),
            free_pages: lowest,
            lowest_free_pages: lowest,
            min_pages: 11_520,
            low_pages: 14_400,
            high_pages: 17_280,
            readings: 10,
            below_low,
            below_min,
            lowest_largest_free_order: Some(order),
            ..ZoneSample::default()
        }
    }

    fn row(kinds: &[StallCategory], zones: Vec<ZoneSample>) -> TimelineRow {
        TimelineRow {
            start_s: 3.0,
            len_ms: 1000.0,
            flagged: true,
            machine: MachineInterval::default(),
            kswapd_cpu_pct: Some(42.0),
            kswapd_awake_pct: 90.0,
            zones,
            processes: vec![ProcessShare {
                pid: 7,
                comm: "app".into(),
                stalled_pct: 50.0,
                by_kind: kinds.iter().map(|&k| (k, 25.0)).collect::<BTreeMap<_, _>>(),
            }],
        }
    }

    fn tunables() -> Tunables {
        Tunables {
            watermark_scale_factor: Some(10),
            ..Tunables::default()
        }
    }

    #[test]
    fn free_under_min_with_direct_reclaim_is_the_watermarks() {
        let rows = [row(
            &[StallCategory::DirectReclaim],
            vec![zone(11_000, 6, 3, 4)],
        )];
        let v = verdicts(&rows, &tunables(), 4096);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].cause, Cause::Watermarks);
        assert_eq!(
            v[0].text,
            "direct reclaim: node 0 Normal free fell under min (43.0M < 45.0M) in 3 of 10 \
             readings; kswapd used 42 % of a CPU. Allocations outpaced kswapd; raising \
             vm.watermark_scale_factor (now 10) wakes it earlier, vm.min_free_kbytes keeps \
             more in reserve."
        );
    }

    #[test]
    fn stalls_above_low_with_small_blocks_are_fragmentation() {
        let dma32 = ZoneSample {
            zone: "DMA32".into(),
            ..zone(200_000, 0, 0, 10)
        };
        let normal = ZoneSample {
            // 1 000 single pages, 500 order-8 blocks, 1 order-9 block: 1 000 + 128 000 + 512.
            free_blocks: vec![1000, 0, 0, 0, 0, 0, 0, 0, 500, 1],
            ..zone(550_000, 0, 0, 8)
        };
        let rows = [row(&[StallCategory::Compaction], vec![dma32, normal])];
        let v = verdicts(&rows, &tunables(), 4096);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].cause, Cause::Fragmentation);
        assert!(
            v[0].text.starts_with(
                "direct compaction with every zone above its low watermark: node 0 Normal had \
                 at least 2.10G free (low 56.2M) but its largest free block fell to order 8 \
                 (1.00M); at the interval's last reading 99.6 % of its free memory was in \
                 blocks below order 9."
            ),
            "{}",
            v[0].text
        );
    }

    #[test]
    fn memcg_reclaim_on_a_roomy_machine_is_the_cgroup_limit() {
        // A small DMA zone with little free but far above its own low watermark.
        let dma = ZoneSample {
            zone: "DMA".into(),
            low_pages: 13,
            ..zone(3_840, 0, 0, 10)
        };
        let rows = [row(
            &[StallCategory::MemcgReclaim, StallCategory::SwapIn],
            vec![dma, zone(4_000_000, 0, 0, 10)],
        )];
        let v = verdicts(&rows, &tunables(), 4096);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].cause, Cause::MemcgLimit);
        assert!(
            v[0].text.contains("the memory cgroup's limit"),
            "{}",
            v[0].text
        );
        assert!(
            v[0].text.contains("node 0 Normal at least 15.3G free"),
            "{}",
            v[0].text
        );
    }

    #[test]
    fn quiet_unreadable_or_mixed_intervals_get_none() {
        let mut quiet = row(&[StallCategory::DirectReclaim], vec![zone(11_000, 6, 3, 4)]);
        quiet.flagged = false;
        let no_zones = row(&[StallCategory::DirectReclaim], Vec::new());
        // Under low but never under min: neither rule's facts hold.
        let between = row(&[StallCategory::DirectReclaim], vec![zone(13_000, 4, 0, 4)]);
        let faults_only = row(
            &[StallCategory::MajorFault],
            vec![zone(4_000_000, 0, 0, 10)],
        );
        assert!(verdicts(&[quiet, no_zones, between, faults_only], &tunables(), 4096).is_empty());
        let mut out = Vec::new();
        write(&[], &mut out).expect("write");
        assert!(out.is_empty());
    }

    #[test]
    fn cause_names_are_the_json_ones() {
        for cause in [Cause::Watermarks, Cause::Fragmentation, Cause::MemcgLimit] {
            let json = serde_json::to_string(&cause).expect("json");
            assert_eq!(json, format!("\"{}\"", cause.name()));
        }
    }

    #[test]
    fn each_verdict_is_one_line_with_its_time() {
        let rows = [row(
            &[StallCategory::MemcgReclaim],
            vec![zone(4_000_000, 0, 0, 10)],
        )];
        let mut out = Vec::new();
        write(&verdicts(&rows, &tunables(), 0), &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "why reclaim ran (flagged intervals):");
        assert!(
            lines[2].starts_with("     3.0s  memcg reclaim with every zone"),
            "{text}"
        );
    }
}
