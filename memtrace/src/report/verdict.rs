//! Why reclaim ran, for each flagged interval: a one-paragraph verdict from the facts the
//! interval holds (the processes' stall kinds, each zone's free pages against its watermarks
//! and its largest free block, kswapd's CPU), naming them. The rules:
//!
//! - direct reclaim or compaction whose stalls began with a zone under `min` (read in the kernel
//!   at each stall), or while a reading found a zone's free under `min`: **watermarks** (the
//!   allocations outpaced kswapd);
//! - direct reclaim or compaction while every zone stayed above `low`, no stall beginning
//!   under `min`: **fragmentation** (the free memory was there, in blocks too small for
//!   high-order allocations);
//! - memcg reclaim while every zone stayed above `low`: **memcg limit** (the cgroup's limit,
//!   not the machine's memory).
//!
//! Intervals without zone readings or stall facts (recordings made before memtrace read them)
//! get none.
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::{timeline::TimelineRow, units};
use crate::samples::{
    StallCategory,
    host::{HostMemory, Tunables},
    zones::{StallZones, ZoneSample, unusable_index},
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

/// The verdicts of the flagged intervals, in time order, on the recorded machine (its page
/// size and zone names).
pub fn verdicts(rows: &[TimelineRow], tunables: &Tunables, memory: &HostMemory) -> Vec<Verdict> {
    let page = if memory.page_size > 0 {
        memory.page_size
    } else {
        DEFAULT_PAGE
    };
    let pages = |n: u64| units::bytes(n * page);
    rows.iter()
        .filter(|row| row.flagged)
        .filter_map(|row| verdict(row, tunables, memory, &pages))
        .collect()
}

/// The zones of a `StallZones` bit set, by name.
fn zone_list(bits: u32, memory: &HostMemory) -> String {
    let names: Vec<String> = (0..32)
        .filter(|zid| bits & (1 << zid) != 0)
        .map(|zid| units::printable(&memory.zone_name(zid)).into_owned())
        .collect();
    names.join(" and ")
}

fn verdict(
    row: &TimelineRow,
    tunables: &Tunables,
    memory: &HostMemory,
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
    // The zones as the direct stalls began, read in the kernel at each.
    let mut facts = StallZones::default();
    for category in [StallCategory::DirectReclaim, StallCategory::Compaction] {
        if let Some(zones) = row.stall_zones.get(&category) {
            facts.merge(zones);
        }
    }
    let stalls_under_min = (facts.under_min > 0).then(|| {
        format!(
            "{} of {} stalls began with {} under min",
            facts.under_min,
            facts.read,
            zone_list(facts.min_zones, memory)
        )
    });
    let under_min = row
        .zones
        .iter()
        .filter(|z| z.below_min > 0)
        .min_by_key(|z| z.lowest_free_pages);
    let all_above_low = !row.zones.is_empty() && row.zones.iter().all(|z| z.below_low == 0);
    let kswapd = row.kswapd_cpu_pct.map_or(String::new(), |pct| {
        format!("; kswapd used {pct:.0} % of a CPU")
    });
    let (cause, text) = if !direct.is_empty() && (under_min.is_some() || facts.under_min > 0) {
        let scale = tunables
            .watermark_scale_factor
            .map_or(String::new(), |f| format!(" (now {f})"));
        let readings = under_min.map(|zone| {
            format!(
                "{} free fell under min ({} < {}) in {} of {} readings",
                zone_name(zone),
                pages(zone.tightest_free_pages),
                pages(zone.tightest_min_pages),
                zone.below_min,
                zone.readings
            )
        });
        let facts: Vec<String> = stalls_under_min.into_iter().chain(readings).collect();
        (
            Cause::Watermarks,
            format!(
                "{}: {}{kswapd}. Allocations outpaced kswapd; raising \
                 vm.watermark_scale_factor{scale} wakes it earlier, vm.min_free_kbytes keeps \
                 more in reserve.",
                direct.join(" and "),
                facts.join("; "),
            ),
        )
    } else if !direct.is_empty() && all_above_low {
        let zone = row
            .zones
            .iter()
            .filter(|z| z.lowest_largest_free_order.is_some())
            .min_by_key(|z| (z.lowest_largest_free_order, u64::MAX - z.lowest_free_pages))?;
        let order = zone.lowest_largest_free_order?;
        // How much of the free memory the allocations that stalled could not use, at the last
        // reading: for the highest order that stalled, or (older recordings) the order above
        // the largest free block.
        let (index_order, stalled) = match facts.highest_order().filter(|&o| o > 0) {
            Some(o) => (o, ", the order that stalled"),
            None => (order + 1, ""),
        };
        let unusable = unusable_index(&zone.free_blocks, index_order).map_or(String::new(), |i| {
            format!(
                "; at the interval's last reading {:.1} % of its free memory was in blocks \
                 below order {index_order}{stalled}",
                i * 100.0,
            )
        });
        // What the stalls themselves found as they began.
        let at_stalls = match (
            facts.lowest_largest_free_order,
            facts.highest_largest_free_order,
        ) {
            (Some(lo), Some(hi)) => {
                let orders = if lo == hi {
                    format!("order {lo}")
                } else {
                    format!("order {lo} to {hi}")
                };
                format!(
                    "; none of its {} stalls began under min, and as they began the highest \
                     zone's largest free block was {orders}",
                    facts.read
                )
            }
            _ => String::new(),
        };
        (
            Cause::Fragmentation,
            format!(
                "{} with every zone above its low watermark: {} had at least {} free (low {}) \
                 but its largest free block fell to order {order} ({}){unusable}{at_stalls}. \
                 High-order allocations found no block large enough in fragmented free \
                 memory{kswapd}.",
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
            tightest_free_pages: lowest,
            tightest_min_pages: 11_520,
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
            stall_zones: BTreeMap::new(),
            allocator: Default::default(),
            processes: vec![ProcessShare {
                pid: 7,
                comm: "app".into(),
                stalled_pct: 50.0,
                by_kind: kinds.iter().map(|&k| (k, 25.0)).collect::<BTreeMap<_, _>>(),
            }],
            memory_moves: Vec::new(),
        }
    }

    fn memory() -> HostMemory {
        HostMemory {
            page_size: 4096,
            zone_names: ["DMA", "DMA32", "Normal", "Movable", "Device"]
                .map(String::from)
                .to_vec(),
            ..HostMemory::default()
        }
    }

    /// `read` stalls of which `under_min` began with DMA32 and Normal under min, the highest
    /// zone's largest free order `orders` as they began.
    fn facts(read: u64, under_min: u64, orders: (u32, u32)) -> StallZones {
        StallZones {
            read,
            under_min,
            under_low: 0,
            min_zones: if under_min > 0 { 0b110 } else { 0 },
            lowest_largest_free_order: Some(orders.0),
            highest_largest_free_order: Some(orders.1),
            orders: 0,
        }
    }

    #[test]
    fn stalls_that_began_under_min_are_the_watermarks_when_no_reading_caught_it() {
        // The 100 ms readings stayed above low: the stalls' own readings decide.
        let mut r = row(
            &[StallCategory::DirectReclaim],
            vec![zone(300_000, 0, 0, 10)],
        );
        r.stall_zones
            .insert(StallCategory::DirectReclaim, facts(11, 11, (10, 10)));
        let v = verdicts(&[r], &tunables(), &memory());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].cause, Cause::Watermarks);
        assert_eq!(
            v[0].text,
            "direct reclaim: 11 of 11 stalls began with DMA32 and Normal under min; kswapd \
             used 42 % of a CPU. Allocations outpaced kswapd; raising \
             vm.watermark_scale_factor (now 10) wakes it earlier, vm.min_free_kbytes keeps \
             more in reserve."
        );
        // Without readings (a recording made before memtrace read /proc/zoneinfo) the stalls'
        // facts still say it.
        let mut bare = row(&[StallCategory::Compaction], Vec::new());
        bare.stall_zones
            .insert(StallCategory::Compaction, facts(3, 1, (2, 4)));
        let v = verdicts(&[bare], &tunables(), &memory());
        assert!(
            v[0].text
                .starts_with("direct compaction: 1 of 3 stalls began"),
            "{}",
            v[0].text
        );
    }

    #[test]
    fn fragmentation_names_what_the_stalls_found_as_they_began() {
        let mut r = row(&[StallCategory::Compaction], vec![zone(550_000, 0, 0, 8)]);
        r.stall_zones
            .insert(StallCategory::Compaction, facts(79, 0, (8, 8)).of_order(9));
        r.zones[0].free_blocks = vec![1000, 0, 0, 0, 0, 0, 0, 0, 500, 1];
        let v = verdicts(&[r], &tunables(), &memory());
        assert_eq!(v[0].cause, Cause::Fragmentation);
        assert!(
            v[0].text.contains(
                "at the interval's last reading 99.6 % of its free memory was in blocks below \
                 order 9, the order that stalled;"
            ),
            "{}",
            v[0].text
        );
        assert!(
            v[0].text.contains(
                "; none of its 79 stalls began under min, and as they began the highest zone's \
                 largest free block was order 8. High-order"
            ),
            "{}",
            v[0].text
        );
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
        let v = verdicts(&rows, &tunables(), &memory());
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
        let v = verdicts(&rows, &tunables(), &memory());
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
        let v = verdicts(&rows, &tunables(), &memory());
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
        assert!(
            verdicts(
                &[quiet, no_zones, between, faults_only],
                &tunables(),
                &memory()
            )
            .is_empty()
        );
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
        write(
            &verdicts(&rows, &tunables(), &HostMemory::default()),
            &mut out,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "why reclaim ran (flagged intervals):");
        assert!(
            lines[2].starts_with("     3.0s  memcg reclaim with every zone"),
            "{text}"
        );
    }
}
