//! The OOM report block, as the live view and the final report print it.
use std::io::{self, Write};

use super::units::{printable, size};
use crate::model::oom::{Aftermath, OomKill, domain::Constraint, frame_function};

/// Candidates listed in the text block (the JSON has them all).
const TOP_CANDIDATES: usize = 8;
/// Stack frames shown in the text block.
const STACK_FRAMES: usize = 12;

fn opt_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("+{ms:.1} ms"))
}

fn path(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref().map_or_else(
        || "?".into(),
        |p| printable(&p.display().to_string()).into_owned(),
    )
}

/// Writes one kill as a block of lines.
pub fn write(kill: &OomKill, out: &mut impl Write) -> io::Result<()> {
    let v = &kill.victim;
    let d = &kill.domain;
    let where_ = match d.constraint {
        Constraint::Memcg => format!("memcg {}", path(&d.cgroup)),
        Constraint::Global => "global (the whole machine)".into(),
        Constraint::Cpuset => "cpuset".into(),
        Constraint::Mempolicy => "memory policy".into(),
    };
    let traced = match kill.traced_victim {
        Some(true) => " [traced process]",
        Some(false) => " [not a traced process]",
        None => "",
    };
    writeln!(
        out,
        "== OOM kill at +{:.2}s in {where_}{traced} ==",
        kill.at_s
    )?;
    writeln!(
        out,
        "  victim     pid {} ({}) uid {}, cgroup {}",
        v.tgid,
        printable(&v.comm),
        v.uid,
        path(&v.cgroup)
    )?;
    writeln!(
        out,
        "             rss {} (anon {}, file {}, shmem {}), swap entries {}, page tables {}, \
         total_vm {}, oom_score_adj {}",
        size((v.anon_rss_kb + v.file_rss_kb + v.shmem_rss_kb) * 1024),
        size(v.anon_rss_kb * 1024),
        size(v.file_rss_kb * 1024),
        size(v.shmem_rss_kb * 1024),
        v.swap_entries,
        size(v.pgtables_kb * 1024),
        size(v.total_vm_kb * 1024),
        v.oom_score_adj
    )?;
    write_trigger(kill, out)?;
    write_domain(kill, out)?;
    let b = &kill.badness;
    writeln!(
        out,
        "  badness    {} points in a domain of {} pages = {}/1000 (/proc/PID/oom_score would \
         say {} of 2000, machine-wide)",
        b.points, b.totalpages, b.score_per_mille, b.proc_oom_score
    )?;
    write_candidates(kill, out)?;
    let a = &kill.aftermath;
    writeln!(
        out,
        "  aftermath  exit {} after the kill, freeing {} of RSS; {}",
        opt_ms(a.exit_ms),
        size(a.freed_kb * 1024),
        reaper(a)
    )?;
    match &kill.kernel_log {
        Some(log) => writeln!(
            out,
            "  kernel log constraint={} oom_memcg={} task_memcg={} ({})",
            printable(&log.line.constraint),
            printable(log.line.oom_memcg.as_deref().unwrap_or("-")),
            printable(log.line.task_memcg.as_deref().unwrap_or("-")),
            if log.agrees { "agrees" } else { "DISAGREES" }
        ),
        None => writeln!(out, "  kernel log (no oom-kill line read from /dev/kmsg)"),
    }
}

/// The OOM reaper's part: it only steps in when the victim has not exited ~2 s after the kill.
fn reaper(a: &Aftermath) -> String {
    let steps = [
        ("woken", a.reaper_woken_ms),
        ("started", a.reaping_started_ms),
        ("finished", a.reaping_finished_ms),
        ("skipped", a.reaping_skipped_ms),
    ];
    let seen: Vec<String> = steps
        .iter()
        .filter_map(|(what, ms)| ms.map(|_| format!("{what} {}", opt_ms(*ms))))
        .collect();
    if seen.is_empty() {
        "the OOM reaper was not needed".into()
    } else {
        format!("OOM reaper {}", seen.join(", "))
    }
}

fn write_trigger(kill: &OomKill, out: &mut impl Write) -> io::Result<()> {
    let t = &kill.trigger;
    let who = if t.is_victim {
        format!("the victim itself (pid {})", t.pid)
    } else {
        format!(
            "pid {} ({}) thread {}, cgroup {}",
            t.tgid,
            printable(&t.comm),
            t.pid,
            path(&t.cgroup)
        )
    };
    writeln!(out, "  trigger    {who}")?;
    match &t.stack_unavailable {
        Some(why) => writeln!(out, "             kernel stack unavailable: {why}"),
        None => {
            let frames: Vec<&str> = t
                .stack
                .iter()
                .map(|f| frame_function(f))
                .take(STACK_FRAMES)
                .collect();
            writeln!(out, "             kernel stack: {}", frames.join(" < "))
        }
    }
}

fn write_domain(kill: &OomKill, out: &mut impl Write) -> io::Result<()> {
    let d = &kill.domain;
    let names = |e: &[crate::model::oom::domain::Evidence]| {
        let list: Vec<&str> = e.iter().map(|e| e.name()).collect();
        list.join(", ")
    };
    let mut basis = format!("decided by {}", names(d.decided_by.as_slice()));
    if !d.agreeing.is_empty() {
        basis.push_str(&format!("; {} agree", names(&d.agreeing)));
    }
    if !d.disagreeing.is_empty() {
        basis.push_str(&format!("; {} DISAGREE", names(&d.disagreeing)));
    }
    if let (Some(limit), Some(usage)) = (d.limit_bytes, d.usage_bytes) {
        let swap = d.swap_limit_bytes.map_or_else(|| "unlimited".into(), size);
        writeln!(
            out,
            "  domain     {}: limit {}, usage {}, {} limit {swap} ({basis})",
            d.constraint.name(),
            size(limit),
            size(usage),
            d.swap_counter.as_deref().unwrap_or("swap")
        )?;
    } else {
        writeln!(out, "  domain     {} ({basis})", d.constraint.name())?;
    }
    writeln!(
        out,
        "             totalpages {}: {}",
        d.totalpages, d.totalpages_rule
    )
}

fn write_candidates(kill: &OomKill, out: &mut impl Write) -> io::Result<()> {
    let c = &kill.candidates;
    if let Some(error) = &c.error {
        return writeln!(out, "  candidates unavailable: {error}");
    }
    writeln!(
        out,
        "  candidates {} in the domain (snapshot by {} {:.1} ms after the kill; the victim's \
         figures are from the kill)",
        c.in_domain, c.snapshot, c.taken_ms_after_kill
    )?;
    writeln!(
        out,
        "             {:>7} {:<16} {:>5} {:>10} {:>9} {:>6}",
        "PID", "COMM", "ADJ", "RSS", "POINTS", "/1000"
    )?;
    for candidate in c.list.iter().take(TOP_CANDIDATES) {
        let note = match (candidate.victim, candidate.ineligible.as_deref()) {
            (true, _) => "  <- victim",
            (false, Some(why)) => why,
            (false, None) => "",
        };
        writeln!(
            out,
            "             {:>7} {:<16} {:>5} {:>10} {:>9} {:>6}{note}",
            candidate.pid,
            printable(&candidate.comm),
            candidate.oom_score_adj,
            size(candidate.rss_kb * 1024),
            candidate.points,
            candidate.score_per_mille
        )?;
    }
    let hidden = c.in_domain.saturating_sub(TOP_CANDIDATES);
    if hidden > 0 {
        writeln!(out, "             ... and {hidden} more (see --json)")?;
    }
    Ok(())
}

/// The kernel's own OOM counters over a run, to set beside memtrace's reports.
#[derive(Clone, Debug)]
pub struct KernelOomCounts {
    /// A memcg and its `oom_kill` count's increase (memory.oom_control or memory.events).
    pub memcg: std::path::PathBuf,
    pub memcg_kills: u64,
    /// `/proc/vmstat oom_kill`'s increase.
    pub machine_kills: u64,
    /// The process that was meant to be killed.
    pub expected_victim: u32,
}

/// memtrace's kills beside the kernel's counters, so the reader can check them.
pub fn write_comparison(
    kills: &[OomKill],
    kernel: &KernelOomCounts,
    out: &mut impl Write,
) -> io::Result<()> {
    let in_memcg = kills
        .iter()
        .filter(|k| k.domain.cgroup.as_deref() == Some(kernel.memcg.as_path()))
        .count();
    let victim = kills.first().map_or(0, |k| k.victim.tgid);
    writeln!(out, "\nmemtrace against the kernel's own OOM counters:")?;
    writeln!(out, "  {:<32} {:>10} {:>10}", "", "memtrace", "kernel")?;
    writeln!(
        out,
        "  {:<32} {:>10} {:>10}  (memory.oom_control / memory.events oom_kill)",
        "OOM kills in the sandbox memcg", in_memcg, kernel.memcg_kills
    )?;
    writeln!(
        out,
        "  {:<32} {:>10} {:>10}  (/proc/vmstat oom_kill)",
        "OOM kills on the machine",
        kills.len(),
        kernel.machine_kills
    )?;
    writeln!(
        out,
        "  {:<32} {:>10} {:>10}  (the hog's pid)",
        "victim pid", victim, kernel.expected_victim
    )
}

#[cfg(test)]
#[path = "oom_tests.rs"]
mod tests;
