//! Reclaim and compaction stalls per process, swap traffic and kswapd: the report sections and
//! their terminal rendering.
use std::io::{self, Write};

use memtrace_common::StallKind;

use super::{Report, gfp::GfpNames, units};
use crate::{
    model::{
        LatencySummary, ProcessFaults, StallStats,
        swap::{Kswapd, SwapTraffic},
    },
    samples::{host::HostMemory, zones::StallZones},
};

/// One allocation shape that stalled.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AllocationReport {
    pub order: i32,
    pub gfp_flags: u32,
    /// `gfp_flags` decoded to the kernel's names.
    pub gfp: String,
    pub count: u64,
    /// The zones of the local node as these stalls began, read in the kernel at each one.
    #[serde(flatten)]
    pub zones: StallZonesReport,
}

/// The zones as a set of stalls began.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StallZonesReport {
    /// Stalls whose zones were read (0 in recordings made before memtrace read them).
    pub zones_read: u64,
    /// Stalls that began with a zone's free pages under its `min` watermark (the kernel's
    /// reason to reclaim directly), and (of the others) under `low`.
    pub began_under_min: u64,
    pub began_under_low: u64,
    /// The zones found under `min`.
    pub min_zones: Vec<String>,
    /// The smallest and the largest of the highest zone's largest free order as the stalls
    /// began (Normal, or Movable where populated: the zone most allocations prefer).
    pub lowest_largest_free_order: Option<u32>,
    pub highest_largest_free_order: Option<u32>,
}

impl StallZonesReport {
    /// How the stalls began, in a few characters: `<min 11/11` (11 of the 11 read began with
    /// a zone under min), `<low 2/5`, `ok 79` (all above low), `-` (not read).
    pub fn began(&self) -> String {
        if self.zones_read == 0 {
            "-".into()
        } else if self.began_under_min > 0 {
            format!("<min {}/{}", self.began_under_min, self.zones_read)
        } else if self.began_under_low > 0 {
            format!("<low {}/{}", self.began_under_low, self.zones_read)
        } else {
            format!("ok {}", self.zones_read)
        }
    }

    pub fn new(zones: &StallZones, memory: &HostMemory) -> Self {
        Self {
            zones_read: zones.read,
            began_under_min: zones.under_min,
            began_under_low: zones.under_low,
            min_zones: (0..32)
                .filter(|zid| zones.min_zones & (1 << zid) != 0)
                .map(|zid| memory.zone_name(zid))
                .collect(),
            lowest_largest_free_order: zones.lowest_largest_free_order,
            highest_largest_free_order: zones.highest_largest_free_order,
        }
    }
}

/// Stalls of one kind in one process.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StallReport {
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// Pages reclaimed during these stalls.
    pub pages_reclaimed: u64,
    /// Which allocations stalled, most frequent first.
    pub allocations: Vec<AllocationReport>,
    /// Direct compaction: zones compacted during these stalls (an attempt compacts zones
    /// until one can serve it; a deferred or ready zone needs no run); 0 for other kinds.
    #[serde(default)]
    pub zone_runs: u64,
    /// Direct compaction: attempts after which a zone could serve the allocation, and
    /// attempts whose every zone was deferred after recent failures; the others failed.
    #[serde(default)]
    pub succeeded: u64,
    #[serde(default)]
    pub deferred: u64,
    /// All these stalls' zones together.
    #[serde(default)]
    pub zones: StallZonesReport,
}

impl StallReport {
    fn new(stats: Option<&StallStats>, gfp: &GfpNames, memory: &HostMemory) -> Self {
        let Some(stats) = stats else {
            return Self::default();
        };
        let mut allocations: Vec<AllocationReport> = stats
            .allocations
            .iter()
            .map(|(&(order, gfp_flags), (count, zones))| AllocationReport {
                order,
                gfp_flags,
                gfp: gfp.decode(gfp_flags),
                count: *count,
                zones: StallZonesReport::new(zones, memory),
            })
            .collect();
        allocations.sort_by_key(|a| std::cmp::Reverse(a.count));
        Self {
            latency: stats.latency.summary(),
            pages_reclaimed: stats.pages,
            allocations,
            zone_runs: stats.zone_runs,
            succeeded: stats.succeeded,
            deferred: stats.deferred,
            zones: StallZonesReport::new(&stats.zones(), memory),
        }
    }
}

/// Every stall kind of one process (all present, `count` 0 when none).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StallsReport {
    pub direct_reclaim: StallReport,
    pub memcg_reclaim: StallReport,
    pub memcg_softlimit: StallReport,
    pub node_reclaim: StallReport,
    pub throttle: StallReport,
    pub compaction: StallReport,
}

impl StallsReport {
    /// The stalls of a process.
    pub fn of(process: &ProcessFaults, gfp: &GfpNames, memory: &HostMemory) -> Self {
        let r = |kind| StallReport::new(process.stall(kind), gfp, memory);
        Self {
            direct_reclaim: r(StallKind::DirectReclaim),
            memcg_reclaim: r(StallKind::MemcgReclaim),
            memcg_softlimit: r(StallKind::MemcgSoftLimit),
            node_reclaim: r(StallKind::NodeReclaim),
            throttle: r(StallKind::Throttle),
            compaction: r(StallKind::Compaction),
        }
    }

    /// The kinds in display order.
    pub fn iter(&self) -> [(StallKind, &StallReport); 6] {
        [
            (StallKind::DirectReclaim, &self.direct_reclaim),
            (StallKind::MemcgReclaim, &self.memcg_reclaim),
            (StallKind::MemcgSoftLimit, &self.memcg_softlimit),
            (StallKind::NodeReclaim, &self.node_reclaim),
            (StallKind::Throttle, &self.throttle),
            (StallKind::Compaction, &self.compaction),
        ]
    }
}

/// Pages moved by one task: the one doing the I/O (the reclaimer, for swap-outs).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TaskSwap {
    pub pid: u32,
    pub comm: String,
    pub out_pages: u64,
    pub in_pages: u64,
}

/// Pages moved for one memory cgroup: the one owning the pages.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MemcgSwap {
    /// Its inode.
    pub memcg_id: u64,
    /// Its path, `None` when its directory was gone before memtrace named it.
    pub memcg_path: Option<String>,
    /// Its memory limit when first seen (`None`: unlimited or unknown).
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
    pub out_pages: u64,
    pub in_pages: u64,
}

/// Swap traffic of the whole recording (machine-wide, whatever the filter).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SwapReport {
    pub out_pages: u64,
    pub in_pages: u64,
    pub by_task: Vec<TaskSwap>,
    pub by_memcg: Vec<MemcgSwap>,
}

impl SwapReport {
    /// Builds the section; `memcg` gives a cgroup inode's recorded path and limit.
    pub fn new(swap: &SwapTraffic, memcg: impl Fn(u64) -> (Option<String>, Option<u64>)) -> Self {
        let mut by_task: Vec<TaskSwap> = swap
            .by_task
            .iter()
            .map(|(&pid, (comm, c))| TaskSwap {
                pid,
                comm: comm.clone(),
                out_pages: c.out_pages,
                in_pages: c.in_pages,
            })
            .collect();
        let mut by_memcg: Vec<MemcgSwap> = swap
            .by_memcg
            .iter()
            .map(|(&id, c)| {
                let (memcg_path, memory_limit_bytes) = memcg(id);
                MemcgSwap {
                    memcg_id: id,
                    memcg_path,
                    memory_limit_bytes,
                    out_pages: c.out_pages,
                    in_pages: c.in_pages,
                }
            })
            .collect();
        // Busiest first; ties by pid or inode, so that every rendering orders them alike.
        by_task.sort_by_key(|s| (std::cmp::Reverse(s.out_pages + s.in_pages), s.pid));
        by_memcg.sort_by_key(|s| (std::cmp::Reverse(s.out_pages + s.in_pages), s.memcg_id));
        Self {
            out_pages: swap.total.out_pages,
            in_pages: swap.total.in_pages,
            by_task,
            by_memcg,
        }
    }
}

/// Who woke kswapd.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Waker {
    pub pid: u32,
    pub comm: String,
    pub order: i32,
    pub count: u64,
    /// The zone of the waking allocation (`null` in recordings made before memtrace read it).
    #[serde(default)]
    pub zone: Option<String>,
}

/// kswapd's wakes for one zone and order: `mm_vmscan_kswapd_wake` says which zone it was
/// woken to balance (the highest the waking allocations may use) and for which order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KswapdWakeReport {
    pub zone: String,
    pub order: i32,
    pub count: u64,
}

/// kswapd of one node.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KswapdReport {
    pub nid: u32,
    /// Times it woke to work.
    pub runs: u64,
    /// Its CPU time (`/proc/PID/schedstat`); `null` in recordings made before memtrace
    /// measured it.
    #[serde(default)]
    pub cpu_ns: Option<u64>,
    /// Wall time from wake to sleep: includes its naps before sleeping and its waits for a
    /// CPU, so it overstates its work (often several times). (`busy_ns` in memtrace 0.1.0.)
    #[serde(default, alias = "busy_ns")]
    pub awake_ns: u64,
    pub woken_by: Vec<Waker>,
    /// Its wakes by zone and order, most first (empty in recordings made before memtrace
    /// read them).
    #[serde(default)]
    pub wakes: Vec<KswapdWakeReport>,
}

/// kswapd of every node, node order.
pub fn kswapd_reports(kswapd: &Kswapd, memory: &HostMemory) -> Vec<KswapdReport> {
    let mut nodes: Vec<KswapdReport> = kswapd
        .nodes
        .values()
        .map(|n| {
            let mut woken_by: Vec<Waker> = n
                .woken_by
                .iter()
                .map(|((pid, comm, order, zid), &count)| Waker {
                    pid: *pid,
                    comm: comm.clone(),
                    order: *order,
                    count,
                    zone: zid.map(|zid| memory.zone_name(zid)),
                })
                .collect();
            let mut wakes: Vec<KswapdWakeReport> = n
                .wake_zones
                .iter()
                .map(|(&(zid, order), &count)| KswapdWakeReport {
                    zone: memory.zone_name(zid),
                    order,
                    count,
                })
                .collect();
            wakes.sort_by(|a, b| {
                (b.count.cmp(&a.count))
                    .then(a.order.cmp(&b.order))
                    .then(a.zone.cmp(&b.zone))
            });
            woken_by.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(a.pid.cmp(&b.pid))
                    .then(a.order.cmp(&b.order))
                    .then(a.comm.cmp(&b.comm))
                    .then(a.zone.cmp(&b.zone))
            });
            KswapdReport {
                nid: n.nid,
                runs: n.runs,
                cpu_ns: n.cpu_ns,
                awake_ns: n.awake_ns,
                woken_by,
                wakes,
            }
        })
        .collect();
    nodes.sort_by_key(|n| n.nid);
    nodes
}

/// Writes the stall table (processes with stalls, most stalled first) and the background
/// activity; nothing when there was none.
pub fn write(report: &Report, top: usize, out: &mut impl Write) -> io::Result<()> {
    let stalled: Vec<_> = report
        .processes
        .iter()
        .filter(|p| p.stall_time_ns > 0)
        .collect();
    if !stalled.is_empty() {
        writeln!(out, "\nreclaim and compaction stalls:")?;
        writeln!(
            out,
            "{:>7} {:<16} {:<15} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}  {:<11} ALLOCATION",
            "PID", "COMM", "KIND", "COUNT", "TOTAL", "P50", "P99", "MAX", "RECLAIMED", "BEGAN"
        )?;
        let mut sorted = stalled;
        sorted.sort_by_key(|p| std::cmp::Reverse(p.stall_time_ns));
        for p in sorted.iter().take(top) {
            for (kind, s) in p.stalls.iter() {
                if s.latency.count == 0 {
                    continue;
                }
                let d = units::duration_ns;
                let (pid, comm) = super::table::who(p);
                let alloc = s
                    .allocations
                    .first()
                    .map_or(String::new(), |a| format!("order {} {}", a.order, a.gfp));
                writeln!(
                    out,
                    "{:>7} {:<16} {:<15} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}  {:<11} {alloc}",
                    pid,
                    comm,
                    kind.name(),
                    s.latency.count,
                    d(s.latency.total_ns),
                    d(s.latency.p50_ns),
                    d(s.latency.p99_ns),
                    d(s.latency.max_ns),
                    s.pages_reclaimed,
                    s.zones.began()
                )?;
            }
        }
        writeln!(
            out,
            "  BEGAN: the zones of the stalling CPU's node as each stall began (<min: a zone \
             under its min watermark, <low: under low, ok: all above low)"
        )?;
    }
    write_compaction(report, out)?;
    write_allocator(&report.allocator, out)?;
    let swap = &report.swap;
    if swap.out_pages + swap.in_pages > 0 {
        writeln!(
            out,
            "\nswap: {} pages out, {} pages in (machine-wide)",
            swap.out_pages, swap.in_pages
        )?;
        for s in swap.by_task.iter().filter(|s| s.out_pages > 0).take(3) {
            writeln!(
                out,
                "  swapped out by {}[{}]: {} pages",
                units::printable(&s.comm),
                s.pid,
                s.out_pages
            )?;
        }
        for s in swap.by_memcg.iter().take(3) {
            let path = s
                .memcg_path
                .clone()
                .unwrap_or_else(|| format!("memcg id {}", s.memcg_id));
            writeln!(
                out,
                "  pages of {}: {} out, {} in",
                units::printable(&path),
                s.out_pages,
                s.in_pages
            )?;
        }
    }
    for node in report
        .kswapd
        .iter()
        .filter(|n| n.runs > 0 || !n.woken_by.is_empty() || n.cpu_ns > Some(0))
    {
        let wakers: Vec<String> = node
            .woken_by
            .iter()
            .take(3)
            .map(|w| {
                let comm = units::printable(&w.comm);
                format!("{comm}[{}] order {} x{}", w.pid, w.order, w.count)
            })
            .collect();
        let cpu = node.cpu_ns.map_or("-".to_string(), units::duration_ns);
        let wakes: Vec<String> = (node.wakes.iter().take(3))
            .map(|w| {
                format!(
                    "{} order {} x{}",
                    units::printable(&w.zone),
                    w.order,
                    w.count
                )
            })
            .collect();
        let wakes = if wakes.is_empty() {
            String::new()
        } else {
            format!(" for {}", wakes.join(", "))
        };
        writeln!(
            out,
            "kswapd{}: {} runs{wakes}, CPU {cpu} (awake {}); woken by {}",
            node.nid,
            node.runs,
            units::duration_ns(node.awake_ns),
            if wakers.is_empty() {
                "-".to_string()
            } else {
                wakers.join(", ")
            }
        )?;
    }
    Ok(())
}

/// Direct compaction of every process together: how the attempts went and what the stalls
/// found as they began (nothing without any).
fn write_compaction(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let all: Vec<&StallReport> = report
        .processes
        .iter()
        .map(|p| &p.stalls.compaction)
        .filter(|c| c.latency.count > 0)
        .collect();
    let stalls: u64 = all.iter().map(|c| c.latency.count).sum();
    if stalls == 0 {
        return Ok(());
    }
    let succeeded: u64 = all.iter().map(|c| c.succeeded).sum();
    let deferred: u64 = all.iter().map(|c| c.deferred).sum();
    let failed = stalls.saturating_sub(succeeded + deferred);
    let attempts = report.allocator.compaction_attempts;
    let skipped = if attempts >= stalls {
        format!(" of {attempts} attempts ({} skipped)", attempts - stalls)
    } else {
        String::new()
    };
    let lowest = all
        .iter()
        .filter_map(|c| c.zones.lowest_largest_free_order)
        .min();
    let highest = all
        .iter()
        .filter_map(|c| c.zones.highest_largest_free_order)
        .max();
    let orders = match (lowest, highest) {
        (Some(lo), Some(hi)) if lo == hi => {
            format!("; largest free block as they began: order {lo}")
        }
        (Some(lo), Some(hi)) => format!("; largest free block as they began: order {lo} to {hi}"),
        _ => String::new(),
    };
    writeln!(
        out,
        "direct compaction: {stalls} stalls{skipped}: {succeeded} succeeded, {failed} failed, \
         {deferred} deferred{orders}"
    )
}

/// kcompactd CPU time below which, without a run for kswapd, its line is left out: its
/// proactive compaction takes tens of microseconds a second on an idle machine.
const KCOMPACTD_QUIET_NS: u64 = 1_000_000;

/// The allocator's fallbacks between migrate types and kcompactd's work (nothing without
/// either).
fn write_allocator(allocator: &super::AllocatorReport, out: &mut impl Write) -> io::Result<()> {
    if allocator.kcompactd_wakes > 0
        || allocator
            .kcompactd_cpu_ns
            .is_some_and(|ns| ns >= KCOMPACTD_QUIET_NS)
    {
        let cpu = allocator
            .kcompactd_cpu_ns
            .map_or("-".to_string(), units::duration_ns);
        writeln!(
            out,
            "kcompactd: {} runs for kswapd, CPU {cpu} (proactive compaction included)",
            allocator.kcompactd_wakes
        )?;
    }
    if allocator.extfrag == 0 {
        return Ok(());
    }
    let pageblock = allocator
        .pageblock_order
        .map_or(String::new(), |o| format!(" (below order {o})"));
    writeln!(
        out,
        "page allocator: {} fallbacks to another migrate type (machine-wide), {} of them blocks \
         smaller than a pageblock{pageblock}: each mixes migrate types in a pageblock, which \
         fragments memory for later high-order allocations",
        allocator.extfrag, allocator.extfrag_fragmenting
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        View,
        fixture::{self, render},
    };

    fn section(report: &Report, top: usize) -> String {
        render(|out| write(report, top, out))
    }

    /// The words of the line that has `needle`, or none.
    fn words_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
        text.lines()
            .find(|l| l.contains(needle))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default()
    }

    #[test]
    fn stall_rows_show_each_kind_with_its_commonest_allocation() {
        let text = section(&fixture::report(), 10);
        assert!(
            text.starts_with("\nreclaim and compaction stalls:\n"),
            "{text}"
        );
        assert_eq!(
            words_with(&text, "RECLAIMED"),
            [
                "PID",
                "COMM",
                "KIND",
                "COUNT",
                "TOTAL",
                "P50",
                "P99",
                "MAX",
                "RECLAIMED",
                "BEGAN",
                "ALLOCATION"
            ]
        );
        assert_eq!(
            words_with(&text, "direct_reclaim"),
            [
                "100",
                "postgres",
                "direct_reclaim",
                "1",
                "30.0ms",
                "30.0ms",
                "30.0ms",
                "30.0ms",
                "10",
                "<min",
                "1/1",
                "order",
                "2",
                "GFP_KERNEL"
            ],
            "{text}"
        );
        // Three stalls of 40, 60 and 100 ms; order 2 stalled twice, order 0 once.
        assert_eq!(
            words_with(&text, "memcg_reclaim"),
            [
                "100",
                "postgres",
                "memcg_reclaim",
                "3",
                "200ms",
                "60.0ms",
                "100ms",
                "100ms",
                "64",
                "ok",
                "3",
                "order",
                "2",
                "GFP_HIGHUSER_MOVABLE"
            ],
            "{text}"
        );
        assert_eq!(
            words_with(&text, " redis "),
            [
                "200",
                "redis",
                "compaction",
                "1",
                "2.00ms",
                "2.00ms",
                "2.00ms",
                "2.00ms",
                "0",
                "ok",
                "1",
                "order",
                "9",
                "GFP_HIGHUSER_MOVABLE|__GFP_COMP"
            ],
            "{text}"
        );
        // Most stalled first; kinds in display order; no row for a process without stalls.
        let at = |needle: &str| text.find(needle).unwrap_or(usize::MAX);
        assert!(at("direct_reclaim") < at("memcg_reclaim"), "{text}");
        assert!(at("memcg_reclaim") < at("redis"), "{text}");
        assert!(!text.contains("cron"), "{text}");
        assert!(!text.contains("throttle"), "{text}");
    }

    #[test]
    fn compaction_outcomes_and_fallbacks_have_a_line_each() {
        let text = section(&fixture::report(), 10);
        assert!(
            text.contains("\n  BEGAN: the zones of the stalling CPU's node as each stall began"),
            "{text}"
        );
        assert!(
            text.contains(
                "\ndirect compaction: 1 stalls of 2 attempts (1 skipped): 0 succeeded, 1 failed, \
                 0 deferred; largest free block as they began: order 8 to 9\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nkcompactd: 1 runs for kswapd, CPU 3.00ms (proactive compaction included)\n\
                 page allocator: 6 fallbacks to another migrate type (machine-wide), 4 of them \
                 blocks smaller than a pageblock (below order 9): each mixes"
            ),
            "{text}"
        );
    }

    #[test]
    fn began_says_the_worst_the_stalls_found() {
        let zones = |read, under_min, under_low| StallZonesReport {
            zones_read: read,
            began_under_min: under_min,
            began_under_low: under_low,
            ..StallZonesReport::default()
        };
        assert_eq!(zones(0, 0, 0).began(), "-");
        assert_eq!(zones(11, 11, 0).began(), "<min 11/11");
        assert_eq!(zones(5, 0, 2).began(), "<low 2/5");
        assert_eq!(zones(79, 0, 0).began(), "ok 79");
    }

    #[test]
    fn top_keeps_the_most_stalled_processes() {
        let text = section(&fixture::report(), 1);
        assert!(text.contains(" memcg_reclaim "), "{text}");
        assert!(!text.contains(" redis "), "{text}");
    }

    #[test]
    fn swap_names_the_swappers_and_the_memcgs_paths() {
        let text = section(&fixture::report(), 10);
        let swap = text
            .split_once("\nswap: ")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("no swap section in:\n{text}"));
        let lines: Vec<&str> = swap.lines().take(5).collect();
        assert_eq!(
            lines,
            [
                "1500 pages out, 60 pages in (machine-wide)",
                "  swapped out by kswapd0[90]: 1200 pages",
                "  swapped out by postgres[100]: 300 pages",
                "  pages of /db.slice: 1400 out, 50 in",
                "  pages of memcg id 999: 100 out, 10 in",
            ],
            "{text}"
        );
        // redis only read pages back: it swapped nothing out.
        assert!(!text.contains("redis[200]: "), "{text}");
    }

    #[test]
    fn kswapd_line_names_its_wakers_busiest_first() {
        let text = section(&fixture::report(), 10);
        assert!(
            text.ends_with(
                "\nkswapd0: 4 runs for Movable order 0 x5, Movable order 9 x1, CPU 28.0ms (awake 200ms); woken by postgres[100] order 0 x5, redis[200] order 3 x2\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn quiet_background_is_a_dash_and_no_stalls_no_table() {
        let mut first = fixture::first_interval();
        for p in &mut first.processes {
            p.stalls.clear();
        }
        let model = fixture::model_of(&[first], None);
        let text = section(&Report::new(&model, &View::default()), 10);
        assert_eq!(
            text,
            "kswapd0: 1 runs for Movable order 9 x1, CPU 7.00ms (awake 50.0ms); woken by -\n"
        );
    }

    #[test]
    fn nothing_happened_nothing_written() {
        let mut first = fixture::first_interval();
        for p in &mut first.processes {
            p.stalls.clear();
        }
        first.kswapd.clear();
        let model = fixture::model_of(&[first], None);
        assert_eq!(section(&Report::new(&model, &View::default()), 10), "");
    }

    #[test]
    fn swap_shares_and_wakers_are_busiest_first() {
        let report = fixture::report();
        let by_memcg: Vec<u64> = report.swap.by_memcg.iter().map(|s| s.memcg_id).collect();
        assert_eq!(by_memcg, [501, 999]);
        let by_task: Vec<u32> = report.swap.by_task.iter().map(|s| s.pid).collect();
        assert_eq!(by_task, [90, 100, 200]);
        let wakers: Vec<(u32, u64)> = report.kswapd[0]
            .woken_by
            .iter()
            .map(|w| (w.pid, w.count))
            .collect();
        assert_eq!(wakers, [(100, 5), (200, 2)]);
    }
}
