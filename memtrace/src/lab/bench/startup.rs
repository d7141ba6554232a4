//! Start-up: from launching `memtrace record` to its "tracing" line, and, measured inside this
//! process, the parts of it: reading the kernel's facts from BTF, and loading plus attaching.
use std::{path::Path, time::Instant};

use super::{
    stats,
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT},
};
use crate::{
    Error,
    collect::{
        kernel::KernelFacts,
        loader::{self, TracerConfig},
    },
};

/// Launches `memtrace record` and loads the programs in-process, `runs` times each,
/// alternately, so that drift of the machine touches both alike.
pub fn run(exe: &Path, runs: usize) -> Result<Vec<Row>, Error> {
    let (mut launch_ms, mut facts_ms, mut attach_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let daemon = MEMTRACE.start(exe, None)?;
        launch_ms.push(daemon.startup.as_secs_f64() * 1e3);
        daemon.stop(STOP_TIMEOUT)?;
        let (facts, attach) = in_process()?;
        facts_ms.push(facts);
        attach_ms.push(attach);
    }
    progress!(
        "memtrace bench: start-up: launch {launch_ms:.0?} ms, BTF {facts_ms:.0?} ms, load+attach {attach_ms:.0?} ms"
    );
    Ok(vec![
        launch_row(&launch_ms),
        part_row(
            "BTF facts (KernelFacts::from_running_kernel, in process)",
            &facts_ms,
        ),
        part_row("load + attach (Tracer::start, in process)", &attach_ms),
    ])
}

/// Milliseconds to read the kernel's facts from BTF, and to load and attach every program.
fn in_process() -> Result<(f64, f64), Error> {
    let started = Instant::now();
    let facts = KernelFacts::from_running_kernel()?;
    let read = Instant::now();
    let tracer = loader::Tracer::start(&TracerConfig::default(), &facts)?;
    let attached = read.elapsed();
    drop(tracer);
    Ok((
        (read - started).as_secs_f64() * 1e3,
        attached.as_secs_f64() * 1e3,
    ))
}

fn ms_range(values: &[f64]) -> String {
    stats::min_max(values).map_or_else(|| "—".into(), |(lo, hi)| format!("{lo:.0}–{hi:.0} ms"))
}

fn launch_row(ms: &[f64]) -> Row {
    let measurement = format!("start-up (median of {})", ms.len());
    let condition = "launch → \"memtrace: tracing\" line";
    let target = format!("≤ {} ms", targets::STARTUP_MAX_MS);
    let Some(median) = stats::median(ms) else {
        return Row::unavailable(&measurement, condition, &target, "no run");
    };
    Row {
        measurement,
        condition: condition.into(),
        result: format!("{median:.0} ms"),
        spread: ms_range(ms),
        target,
        verdict: targets::at_most(median, targets::STARTUP_MAX_MS, "ms"),
    }
}

fn part_row(condition: &str, ms: &[f64]) -> Row {
    Row {
        measurement: format!("start-up (median of {})", ms.len()),
        condition: condition.into(),
        result: stats::median(ms).map_or_else(|| "—".into(), |m| format!("{m:.0} ms")),
        spread: ms_range(ms),
        target: "—".into(),
        verdict: "part of the above".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_verdicts() {
        let row = launch_row(&[90.0, 125.0, 130.0]);
        assert_eq!(row.result, "125 ms");
        assert_eq!(row.spread, "90–130 ms");
        assert_eq!(row.verdict, "missed by 25.0 ms (25 % over)");
        assert_eq!(launch_row(&[80.0, 95.0, 99.0]).verdict, "met");
        assert!(launch_row(&[]).verdict.starts_with("n/a"));
    }
}
