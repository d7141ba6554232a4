//! `memtrace selfcheck`: runs memtrace, as a user would, on sandboxed scenarios with known
//! effects, and holds each of its figures against the kernel's own measure of the same thing
//! (/proc/PID/stat, /proc/vmstat, memcg counters, taskstats delay accounting, the kernel log).
//! Tracepoints change meaning across kernels: this is how a user learns whether memtrace can
//! be trusted on theirs.
//!
//! The machine side (`scenario`) runs each scenario and gathers an [`Observed`]: memtrace's
//! report beside the kernel's figures. The rows (`rows`) are pure functions of it, and the
//! renderers (`table`) of the rows.
pub mod check;
mod guard;
pub mod kmsg;
mod recorder;
pub mod rows;
mod scenario;
pub mod table;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{
    collect::{
        procfs::{parse_vmstat, vmstat_sum},
        taskstats::TaskDelays,
    },
    error::Error,
    lab::workload::FaultCounters,
    report::Report,
};
use check::{Check, Verdict};
use kmsg::KilledProcess;

/// Version tag of the JSON document.
pub const SCHEMA: &str = "memtrace.selfcheck/1";
/// The delay accounting switch, on for the run.
const TASK_DELAYACCT: &str = "/proc/sys/kernel/task_delayacct";

/// What to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Also provoke reclaim of the whole machine (fills most free memory with a hugepage pool,
    /// then reads a large sparse file): direct reclaim against `allocstall`.
    pub global_reclaim: bool,
}

/// The whole run's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelfCheck {
    pub schema: String,
    pub memtrace_version: String,
    /// `uname -r`.
    pub kernel: String,
    /// `kernel.task_delayacct` before the run (restored after it); `absent` on kernels
    /// without it.
    pub task_delayacct_was: String,
    pub duration_s: f64,
    pub scenarios: Vec<ScenarioOutcome>,
}

impl SelfCheck {
    /// Every row.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.scenarios.iter().flat_map(|s| s.checks.iter())
    }

    /// True when every row passed.
    pub fn passed(&self) -> bool {
        self.checks().all(|c| c.verdict == Verdict::Pass)
    }
}

/// One scenario: what it did, how memtrace saw it, and its rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioOutcome {
    pub name: String,
    /// What the workload does, in words.
    pub what: String,
    /// How memtrace traced it (`traced pid 4242 for 0.92 s, 0 records lost`), or why the
    /// scenario could not run.
    pub traced: String,
    pub checks: Vec<Check>,
}

/// /proc/vmstat before and after a run: every counter, so that a new row needs no new
/// capture.
#[derive(Clone, Debug, Default)]
pub struct Vmstat {
    pub before: String,
    pub after: String,
}

impl Vmstat {
    /// How much `key` grew; an error naming it when this kernel lacks it.
    pub fn delta(&self, key: &str) -> Result<u64, String> {
        match (
            parse_vmstat(&self.before, key),
            parse_vmstat(&self.after, key),
        ) {
            (Some(before), Some(after)) => Ok(after.saturating_sub(before)),
            _ => Err(format!("this kernel's /proc/vmstat has no {key}")),
        }
    }

    /// How much the counters named `prefix*` grew together (`allocstall_`).
    pub fn delta_sum(&self, prefix: &str) -> u64 {
        vmstat_sum(&self.after, prefix).saturating_sub(vmstat_sum(&self.before, prefix))
    }
}

/// The sandbox memcg's own counters over the run.
#[derive(Clone, Debug)]
pub struct MemcgObserved {
    /// Its directory, as memtrace names it.
    pub path: String,
    /// `oom_kill` of memory.oom_control (v1) or memory.events (v2).
    pub oom_kills: Result<u64, String>,
    /// `pswpin` and `pswpout` of memory.stat: cgroup v2 only.
    pub pswpin: Option<u64>,
    pub pswpout: Option<u64>,
}

/// One scenario's run: memtrace's report and the kernel's own figures for the same span.
#[derive(Clone, Debug)]
pub struct Observed {
    /// What `memtrace record --json` reported.
    pub report: Report,
    /// The workload's pid.
    pub pid: u32,
    /// Its `minflt`/`majflt` (/proc/PID/stat) over the traced span: from the moment memtrace
    /// was attached (the workload paused) to its exit (read from the zombie).
    pub stat: Result<FaultCounters, String>,
    /// Its delay accounting at its exit (taskstats of the zombie).
    pub delays: Result<TaskDelays, String>,
    pub vmstat: Vmstat,
    /// The sandbox memcg's counters, when the workload ran in one.
    pub memcg: Option<MemcgObserved>,
    /// The kernel log's `Killed process` line for the workload (OOM scenario only).
    pub killed: Option<Result<KilledProcess, String>>,
    /// What the workload printed (some report their own kernel figures for one phase).
    pub output: String,
    /// kswapd's CPU time over the traced span, from /proc/PID/schedstat of its threads
    /// (global scenario only).
    pub kswapd_cpu_ns: Option<u64>,
}

/// Runs every scenario and compares. `kernel.task_delayacct` is 1 for the run and restored
/// after it, whatever happens (a failed scenario, a panic, SIGINT/SIGTERM/SIGHUP).
pub fn run(options: Options) -> Result<SelfCheck, Error> {
    guard::take_signals()?;
    let started = Instant::now();
    let delayacct = guard::Sysctl::set_if_present(TASK_DELAYACCT, "1")?;
    if delayacct.is_none() {
        progress!(
            "memtrace selfcheck: this kernel has no kernel.task_delayacct (before Linux 5.14, \
             delay accounting follows the delayacct/nodelayacct boot option)"
        );
    }
    let mut scenarios = Vec::new();
    for scenario in scenario::all(options) {
        progress!("memtrace selfcheck: {}: {}", scenario.name, scenario.what);
        let began = Instant::now();
        let observed = (scenario.run)();
        if let Some(signal) = guard::interrupted() {
            drop(observed);
            return Err(interrupted(signal));
        }
        let outcome = outcome(&scenario, observed);
        let failed = outcome
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count();
        progress!(
            "memtrace selfcheck: {}: {} checks, {failed} failed ({:.1} s)",
            scenario.name,
            outcome.checks.len(),
            began.elapsed().as_secs_f64()
        );
        scenarios.push(outcome);
    }
    let was = delayacct
        .as_ref()
        .map_or("absent", guard::Sysctl::original)
        .to_string();
    drop(delayacct);
    Ok(SelfCheck {
        schema: SCHEMA.to_string(),
        memtrace_version: env!("CARGO_PKG_VERSION").to_string(),
        kernel: kernel_release(),
        task_delayacct_was: was,
        duration_s: started.elapsed().as_secs_f64(),
        scenarios,
    })
}

/// A scenario's rows, or one failed row saying why it could not run.
fn outcome(scenario: &scenario::Scenario, observed: Result<Observed, Error>) -> ScenarioOutcome {
    let (traced, checks) = match observed {
        Ok(observed) => {
            let report = &observed.report;
            let traced = format!(
                "traced {} for {:.2} s, {} records lost",
                report.traced, report.duration_s, report.lost.total
            );
            let rows = (scenario.rows)(&observed);
            (
                traced,
                rows.into_iter().map(|r| r.judge(scenario.name)).collect(),
            )
        }
        Err(e) => {
            let failed = Check {
                scenario: scenario.name.to_string(),
                figure: "the scenario ran".to_string(),
                memtrace: None,
                kernel: None,
                source: "-".to_string(),
                tolerance: check::Tolerance::Exact,
                verdict: Verdict::Fail,
                note: Some(e.to_string()),
            };
            (format!("could not run: {e}"), vec![failed])
        }
    };
    ScenarioOutcome {
        name: scenario.name.to_string(),
        what: scenario.what.clone(),
        traced,
        checks,
    }
}

fn interrupted(signal: i32) -> Error {
    let name = match signal {
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        other => format!("signal {other}"),
    };
    Error::io(
        format!("selfcheck stopped by {name}"),
        std::io::Error::other("its sandboxes are removed and kernel.task_delayacct is restored"),
    )
}

/// `uname -r`.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
