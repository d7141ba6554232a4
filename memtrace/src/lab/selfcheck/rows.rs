//! The rows of each scenario: pure functions of what a run observed, one [`Row`] per figure.
//!
//! To check a new figure, add a row to its scenario's function: the kernel's side is most
//! likely already captured (every /proc/vmstat counter is, as is the workload's whole
//! taskstats record and what the workload printed).
use super::{
    Observed,
    check::{Row, Tolerance, Value},
};
use crate::{
    collect::taskstats::Delay,
    lab::workload::pages::{SequentialOutcome, ThpOutcome},
    report::{ClassReport, ProcessReport},
};

/// The scenarios' sizes, shared by the machine side and the rows' floors.
pub mod plan {
    /// faults: a cold file read through a mapping, fresh memory touched once.
    pub const FILE_MIB: u64 = 32;
    pub const ANON_MIB: u64 = 64;
    pub const FAULTS_LIMIT_MIB: u64 = 256;
    /// swap storm: written and read back in a smaller memcg, with zram swap.
    pub const STORM_MIB: u64 = 160;
    pub const STORM_LIMIT_MIB: u64 = 64;
    pub const STORM_SWAP_MIB: u64 = 512;
    /// pages: huge-page memory touched once per 2 MiB, then a cold file read sequentially.
    pub const THP_MIB: u64 = 64;
    pub const SEQ_MIB: u64 = 64;
    /// global reclaim: memory left with half its pages free, each beside a page in use, before
    /// the hugepage pool fills.
    pub const FRAGMENT_MIB: u64 = 4096;
    /// memcg OOM: a hog in a memcg without swap.
    pub const HOG_MIB: u64 = 192;
    pub const OOM_LIMIT_MIB: u64 = 48;
    /// 4 KiB pages in a MiB.
    pub const PAGES_PER_MIB: u64 = 256;
}

/// The workload's process in memtrace's report.
fn process(o: &Observed) -> Option<&ProcessReport> {
    o.report
        .processes
        .iter()
        .find(|p| p.pid == o.pid && p.folded_processes == 0)
}

fn count(n: Option<u64>) -> Option<Value> {
    n.map(Value::Count)
}

/// A kernel figure, or why there is none.
fn kernel<T>(
    figure: &Result<T, String>,
    value: impl FnOnce(&T) -> Option<Value>,
    missing: &str,
) -> Result<Value, String> {
    match figure {
        Ok(figure) => value(figure).ok_or_else(|| missing.to_string()),
        Err(e) => Err(e.clone()),
    }
}

/// Faults of every class, the major ones (file and swap-in), and the rest: the kernel counts
/// all that is not major as minor (THP faults included).
fn fault_counts(p: &ProcessReport) -> (u64, u64, u64) {
    let all: u64 = p.classes.iter().iter().map(|(_, c)| c.latency.count).sum();
    let major = p.classes.major_file.latency.count + p.classes.swap_in.latency.count;
    (all, major, all.saturating_sub(major))
}

/// The faults scenario: memtrace's fault counts against the workload's own.
pub fn faults(o: &Observed) -> Vec<Row> {
    let counts = process(o).map(fault_counts);
    let stat =
        |f: fn(u64, u64) -> u64| kernel(&o.stat, |s| Some(Value::Count(f(s.minflt, s.majflt))), "");
    vec![
        Row::new(
            "minor faults",
            count(counts.map(|c| c.2)),
            stat(|min, _| min),
            "/proc/PID/stat minflt",
            Tolerance::Exact,
        )
        .floor(plan::ANON_MIB * plan::PAGES_PER_MIB),
        Row::new(
            "major faults",
            count(counts.map(|c| c.1)),
            stat(|_, maj| maj),
            "/proc/PID/stat majflt",
            Tolerance::Exact,
        )
        .floor(plan::FILE_MIB * plan::PAGES_PER_MIB / 2),
        Row::new(
            "all faults",
            count(counts.map(|c| c.0)),
            stat(|min, maj| min + maj),
            "/proc/PID/stat minflt + majflt",
            Tolerance::Exact,
        ),
    ]
}

/// The memcg's swap traffic against its own counters on cgroup v2. Cgroup v1 has none per
/// memcg: there memtrace's machine-wide count is compared with the machine's, since anything
/// else on the machine may swap to the scenario's zram device while it exists (kswapd took 3
/// pages of another memcg during one CI run).
fn swap_pages(o: &Observed, out: bool) -> Row {
    let memcg = o.memcg.as_ref();
    let pick = |out_pages: u64, in_pages: u64| if out { out_pages } else { in_pages };
    let share = memcg.and_then(|m| {
        o.report
            .swap
            .by_memcg
            .iter()
            .find(|s| s.memcg_path.as_deref() == Some(m.path.as_str()))
    });
    let (key, figure) = if out {
        ("pswpout", "pages swapped out")
    } else {
        ("pswpin", "pages swapped in")
    };
    let own = memcg.and_then(|m| if out { m.pswpout } else { m.pswpin });
    let (memtrace, kernel, source) = match own {
        Some(pages) => (
            share.map_or(0, |s| pick(s.out_pages, s.in_pages)),
            Ok(Value::Count(pages)),
            format!("memcg memory.stat {key}"),
        ),
        None => (
            pick(o.report.swap.out_pages, o.report.swap.in_pages),
            o.vmstat.delta(key).map(Value::Count),
            format!(
                "/proc/vmstat {key} (machine-wide on both sides: cgroup v1 counts none per memcg)"
            ),
        ),
    };
    Row::new(
        figure,
        Some(Value::Count(memtrace)),
        kernel,
        source,
        Tolerance::Exact,
    )
    .floor(plan::STORM_MIB * plan::PAGES_PER_MIB / 4)
}

/// What memtrace's programs at the two ends of a stall may add to its time: the reclaim
/// tracepoints sit just outside the kernel's `freepages` accounting. Measured on Linux 6.18:
/// 1.3–1.8 µs a stall with `--pid`, 3.7–6.2 µs tracing every process of a busy machine.
const PROBE_COST_NS: u64 = 10_000;

/// Reclaim stalls that delay accounting counts as `freepages`: `do_try_to_free_pages()`,
/// which direct (global) and memcg reclaim both run.
fn reclaim_stalls(p: &ProcessReport) -> Delay {
    let (direct, memcg) = (
        &p.stalls.direct_reclaim.latency,
        &p.stalls.memcg_reclaim.latency,
    );
    Delay {
        count: direct.count + memcg.count,
        total_ns: direct.total_ns + memcg.total_ns,
    }
}

/// Rows of a process's reclaim stalls against its `freepages` delay.
fn reclaim_rows(o: &Observed, floor: u64) -> [Row; 2] {
    let stalls = process(o).map(reclaim_stalls);
    let freepages = |f: fn(&Delay) -> u64, unit: fn(u64) -> Value| {
        kernel(
            &o.delays,
            |d| d.freepages.as_ref().map(|d| unit(f(d))),
            "this kernel's taskstats has no freepages delay (version < 7)",
        )
    };
    [
        Row::new(
            "reclaim stalls",
            count(stalls.map(|s| s.count)),
            freepages(|d| d.count, Value::Count),
            "taskstats freepages_count",
            Tolerance::Exact,
        )
        .floor(floor),
        Row::new(
            "reclaim stall time",
            stalls.map(|s| Value::Ns(s.total_ns)),
            freepages(|d| d.total_ns, Value::Ns),
            "taskstats freepages_delay_total",
            Tolerance::Wraps {
                per_event_ns: PROBE_COST_NS,
                events: stalls.map_or(0, |s| s.count),
            },
        ),
    ]
}

/// The swap storm: swap traffic against the kernel's page counts; memcg reclaim stalls and
/// swap-ins against the workload's delay accounting.
pub fn swap_storm(o: &Observed) -> Vec<Row> {
    let swap_in = process(o).map(|p| &p.classes.swap_in.latency);
    let swapin = |f: fn(&Delay) -> u64, unit: fn(u64) -> Value| {
        kernel(&o.delays, |d| Some(unit(f(&d.swapin))), "")
    };
    let mut rows = vec![swap_pages(o, true), swap_pages(o, false)];
    rows.extend(reclaim_rows(o, 100));
    rows.push(
        Row::new(
            "swap-in faults",
            count(swap_in.map(|l| l.count)),
            swapin(|d| d.count, Value::Count),
            "taskstats swapin_count (one per page read)",
            Tolerance::Exact,
        )
        .floor(plan::STORM_MIB * plan::PAGES_PER_MIB / 4),
    );
    rows.push(Row::new(
        "swap-in fault time",
        swap_in.map(|l| Value::Ns(l.total_ns)),
        swapin(|d| d.total_ns, Value::Ns),
        "taskstats swapin_delay_total (the reads within the faults)",
        Tolerance::AtLeast,
    ));
    rows
}

/// The memcg OOM: the kill memtrace reports against the memcg's and the machine's OOM
/// counters and the kernel log's line about the victim.
pub fn memcg_oom(o: &Observed) -> Vec<Row> {
    let memcg = o.memcg.as_ref();
    let kills = &o.report.oom_kills;
    let in_memcg = kills
        .iter()
        .filter(|k| {
            let path = k.domain.cgroup.as_ref().map(|p| p.display().to_string());
            path.is_some() && path.as_deref() == memcg.map(|m| m.path.as_str())
        })
        .count() as u64;
    let memcg_kills = memcg.map_or(Err("no memcg".to_string()), |m| {
        m.oom_kills.clone().map(Value::Count)
    });
    let victim = kills
        .iter()
        .find(|k| k.victim.tgid == o.pid)
        .map(|k| &k.victim);
    let killed = o
        .killed
        .clone()
        .unwrap_or_else(|| Err("the kernel log was not read".to_string()));
    let line = "kernel log \"Killed process\"";
    let kb = |figure, memtrace: Option<u64>, field: fn(&super::kmsg::KilledProcess) -> u64| {
        Row::new(
            figure,
            memtrace.map(Value::Kb),
            kernel(&killed, |k| Some(Value::Kb(field(k))), ""),
            line,
            Tolerance::Exact,
        )
    };
    vec![
        Row::new(
            "OOM kills in the memcg",
            Some(Value::Count(in_memcg)),
            memcg_kills,
            "memcg oom_kill (memory.oom_control / memory.events)",
            Tolerance::Exact,
        )
        .floor(1),
        Row::new(
            "OOM kills on the machine",
            Some(Value::Count(kills.len() as u64)),
            o.vmstat.delta("oom_kill").map(Value::Count),
            "/proc/vmstat oom_kill",
            Tolerance::Exact,
        )
        .floor(1),
        Row::new(
            "victim pid",
            victim.map(|v| Value::Pid(v.pid)),
            kernel(&killed, |k| Some(Value::Pid(k.pid)), ""),
            line,
            Tolerance::Exact,
        ),
        Row::new(
            "victim comm",
            victim.map(|v| Value::Text(v.comm.clone())),
            kernel(&killed, |k| Some(Value::Text(k.comm.clone())), ""),
            line,
            Tolerance::Exact,
        ),
        kb("victim anon-rss", victim.map(|v| v.anon_rss_kb), |k| {
            k.anon_rss_kb
        }),
        kb("victim file-rss", victim.map(|v| v.file_rss_kb), |k| {
            k.file_rss_kb
        }),
        kb("victim shmem-rss", victim.map(|v| v.shmem_rss_kb), |k| {
            k.shmem_rss_kb
        }),
        kb("victim total-vm", victim.map(|v| v.total_vm_kb), |k| {
            k.total_vm_kb
        }),
    ]
}

/// The pages scenario: huge page faults against `thp_fault_alloc`; the time faults spent
/// blocked against the time the workload slept over its two phases (it sleeps only in
/// faults there), and their wait for a CPU against its run delay.
pub fn pages(o: &Observed) -> Vec<Row> {
    let classes = process(o).map(|p| &p.classes);
    let outcome: Result<PagesOutcome, String> =
        serde_json::from_str(o.output.trim()).map_err(|e| format!("the workload's report: {e}"));
    let asleep = outcome.and_then(|o| match (o.thp, o.sequential) {
        (Some(thp), Some(seq)) => Ok(Value::Ns(thp.time.plus(&seq.time).asleep_ns)),
        _ => Err("the workload ran only one phase".to_string()),
    });
    let split = |f: fn(&ClassReport) -> Option<u64>| -> Option<Value> {
        let classes = classes?;
        let parts: Option<Vec<u64>> = classes.iter().iter().map(|(_, c)| f(c)).collect();
        parts.map(|p| Value::Ns(p.iter().sum()))
    };
    vec![
        Row::new(
            "huge page (thp) faults",
            count(classes.map(|c| c.thp.latency.count)),
            o.vmstat.delta("thp_fault_alloc").map(Value::Count),
            "/proc/vmstat thp_fault_alloc (machine-wide)",
            Tolerance::Exact,
        )
        .floor(plan::THP_MIB / 2),
        Row::new(
            "faults' blocked time",
            split(|c| c.blocked_ns),
            asleep,
            "time asleep in the writes and the read: wall - schedstat on-CPU - run delay",
            Tolerance::Near,
        ),
        // Huge page faults wait for a CPU too, so this one is held against the whole life's.
        Row::new(
            "faults' wait for a CPU",
            split(|c| c.waiting_ns),
            kernel(&o.delays, |d| Some(Value::Ns(d.cpu.total_ns)), ""),
            "taskstats cpu_delay_total (its run delay)",
            Tolerance::AtMost,
        ),
    ]
}

/// What the pages workload prints.
#[derive(serde::Deserialize)]
struct PagesOutcome {
    thp: Option<ThpOutcome>,
    sequential: Option<SequentialOutcome>,
}

/// Global reclaim: every direct-reclaim and direct-compaction stall on the machine against
/// `allocstall` and `compact_stall`, the reader's own stalls against its delay accounting, and
/// kswapd's CPU time against its schedstat.
pub fn global_reclaim(o: &Observed) -> Vec<Row> {
    let machine = |f: fn(&ProcessReport) -> u64| -> u64 { o.report.processes.iter().map(f).sum() };
    let direct = machine(|p| p.stalls.direct_reclaim.latency.count);
    let compaction = machine(|p| p.stalls.compaction.latency.count);
    let kswapd: Option<u64> = o
        .report
        .kswapd
        .iter()
        .map(|n| n.cpu_ns)
        .sum::<Option<u64>>();
    let mut rows = vec![
        Row::new(
            "direct reclaim stalls (machine)",
            Some(Value::Count(direct)),
            Ok(Value::Count(o.vmstat.delta_sum("allocstall_"))),
            "/proc/vmstat allocstall_*",
            Tolerance::Exact,
        )
        .floor(1),
        Row::new(
            "direct compaction stalls (machine)",
            Some(Value::Count(compaction)),
            o.vmstat.delta("compact_stall").map(Value::Count),
            "/proc/vmstat compact_stall",
            Tolerance::Exact,
        )
        .floor(1),
        Row::new(
            "kswapd CPU time",
            kswapd.map(Value::Ns),
            o.kswapd_cpu_ns
                .map(Value::Ns)
                .ok_or_else(|| "no kswapd thread found".to_string()),
            "/proc/PID/schedstat of the kswapdN threads",
            Tolerance::Percent(5.0),
        ),
    ];
    rows.extend(reclaim_rows(o, 1));
    rows
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
