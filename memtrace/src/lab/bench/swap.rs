//! Swap-storm overhead: the demo's swap cycle (160 MiB written and read back in a 64 MiB memory
//! cgroup with zram swap), timed untraced and traced, in alternating pairs.
use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    time::Instant,
};

use super::{
    recorded::{self, TempReport},
    stats::{self, Pair},
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT},
};
use crate::{
    Error,
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::faults::FaultOutcome,
};

const MIB: u64 = 1 << 20;

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct SwapPlan {
    pub pairs: usize,
    /// Memory limit of the cgroup.
    pub limit_mib: u64,
    /// Anonymous memory written and read back.
    pub swap_mib: u64,
}

/// One run of the cycle: seconds from release to the workload's report, and swap-ins.
struct Run {
    secs: f64,
    swapins: u64,
}

/// Runs the pairs in a fresh sandbox (removed on return) and returns the rows.
pub fn run(exe: &Path, plan: &SwapPlan) -> Result<Vec<Row>, Error> {
    let limits = MemcgLimits {
        memory_bytes: plan.limit_mib * MIB,
        swap_bytes: None,
    };
    // Room for the whole workload and then some, like the demo.
    let sandbox = Sandbox::create(&limits, Some(plan.swap_mib.max(256) * MIB * 2))?;
    let (mut pairs, mut untraced, mut swapins, mut lost) = (Vec::new(), Vec::new(), Vec::new(), 0);
    // A first cycle on the fresh zram device and memcg is not like the others: untimed.
    cycle(exe, &sandbox, plan)?;
    for round in 1..=plan.pairs {
        super::interrupt::check()?;
        // Traced first and untraced right after, as in the fault overhead: closest in time.
        let report = TempReport::new();
        let daemon = MEMTRACE.start(exe, Some(report.path()))?;
        let test = cycle(exe, &sandbox, plan);
        daemon.stop(STOP_TIMEOUT)?;
        let test = test?;
        lost += recorded::read(report.path())?.lost;
        let base = cycle(exe, &sandbox, plan)?;
        progress!(
            "memtrace bench: swap storm {round}/{}: {:.2} s -> {:.2} s",
            plan.pairs,
            base.secs,
            test.secs
        );
        untraced.push(base.secs);
        swapins.extend([base.swapins as f64, test.swapins as f64]);
        pairs.push(Pair {
            base: base.secs,
            test: test.secs,
        });
    }
    drop(sandbox);
    Ok(rows(plan, &pairs, &untraced, &swapins, lost))
}

/// One swap cycle in the sandbox's memcg.
fn cycle(exe: &Path, sandbox: &Sandbox, plan: &SwapPlan) -> Result<Run, Error> {
    let mut child = Command::new(exe)
        .args([
            "workload",
            "--wait",
            "faults",
            "--file-mib",
            "0",
            "--anon-mib",
            "0",
        ])
        .args(["--swap-mib", &plan.swap_mib.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting the swap workload", e))?;
    let result = time_cycle(&mut child, sandbox);
    // The workload must not outlive a failed run.
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the swap workload", e))?;
    let run = result?;
    if !status.success() {
        return Err(Error::Sandbox {
            what: "swap workload".into(),
            reason: format!("exited with {status}"),
        });
    }
    Ok(run)
}

/// Moves the waiting workload into the memcg, releases it and times it up to its report.
fn time_cycle(child: &mut Child, sandbox: &Sandbox) -> Result<Run, Error> {
    sandbox.memcg.add_pid(child.id())?;
    let pipe = || Error::io("swap workload pipes", std::io::ErrorKind::BrokenPipe.into());
    let mut stdin = child.stdin.take().ok_or_else(pipe)?;
    let stdout = child.stdout.take().ok_or_else(pipe)?;
    let started = Instant::now();
    stdin
        .write_all(b"go\n")
        .map_err(|e| Error::io("releasing the swap workload", e))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the swap workload's outcome", e))?;
    let secs = started.elapsed().as_secs_f64();
    let outcome: FaultOutcome =
        serde_json::from_str(&line).map_err(|e| Error::InvalidArgument {
            what: "swap workload outcome",
            value: line.trim().chars().take(80).collect(),
            reason: e.to_string(),
        })?;
    Ok(Run {
        secs,
        swapins: outcome.swap.majflt,
    })
}

fn rows(plan: &SwapPlan, pairs: &[Pair], untraced: &[f64], swapins: &[f64], lost: u64) -> Vec<Row> {
    let measurement = format!(
        "swap storm ({} MiB through a {} MiB memcg, zram; {} pairs)",
        plan.swap_mib,
        plan.limit_mib,
        pairs.len()
    );
    let target = format!("≤ {} %", targets::OVERHEAD_MAX_PCT);
    let Some(summary) = stats::paired(pairs) else {
        return vec![Row::unavailable(
            &measurement,
            &MEMTRACE.label(),
            &target,
            "no valid pair",
        )];
    };
    let noise = stats::spread_around_median(untraced)
        .map_or_else(|| "—".into(), |(lo, hi)| targets::pct_range(lo, hi));
    vec![
        Row {
            measurement: measurement.clone(),
            condition: "untraced (run-to-run noise)".into(),
            result: format!("{:.2} s per cycle", summary.base_median),
            spread: noise,
            target: "—".into(),
            verdict: "noise floor".into(),
        },
        Row {
            measurement,
            condition: MEMTRACE.label(),
            result: format!(
                "{:.2} vs {:.2} s: {}, slower in {} of {} pairs; {} swap-in faults per cycle; \
                 {lost} records lost",
                summary.test_median,
                summary.base_median,
                targets::signed_pct(summary.ratio_median),
                summary.slower,
                summary.pairs,
                targets::thousands(stats::median(swapins).unwrap_or(0.0)),
            ),
            spread: targets::pct_range(summary.ratio_min, summary.ratio_max),
            target,
            verdict: targets::overhead_verdict(summary.overhead_pct()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_noise_and_overhead() {
        let plan = SwapPlan {
            pairs: 2,
            limit_mib: 64,
            swap_mib: 160,
        };
        let pairs = [
            Pair {
                base: 1.0,
                test: 1.02,
            },
            Pair {
                base: 1.1,
                test: 1.21,
            },
        ];
        let rows = rows(&plan, &pairs, &[1.0, 1.1], &[40_000.0, 40_960.0], 0);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].verdict, "noise floor");
        assert_eq!(rows[1].verdict, "missed by 1.0 pt");
        assert!(
            rows[1].result.contains("40 480 swap-in faults"),
            "{}",
            rows[1].result
        );
        let none = super::rows(&plan, &[], &[], &[], 0);
        assert!(none[0].verdict.starts_with("n/a"));
    }
}
