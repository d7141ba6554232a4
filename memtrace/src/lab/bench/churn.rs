//! Footprint under fork churn: memtrace records the whole machine while two shell loops fork
//! `/bin/true` (thousands of processes a second), and its resident memory is sampled as it
//! goes: the curve must flatten once ended processes are folded.
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    interrupt, procfs,
    recorded::{self, TempReport},
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT},
};
use crate::Error;

/// The RSS memtrace must stay under after an hour of churn (the reliability target).
pub const CHURN_RSS_MAX_MB: f64 = 64.0;
/// How often the resident memory is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Fork loops, killed on drop.
struct Loops(Vec<Child>);

impl Drop for Loops {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One row: the RSS curve over `duration` of churn.
pub fn run(exe: &Path, duration: Duration) -> Result<Vec<Row>, Error> {
    let report = TempReport::new();
    let daemon = MEMTRACE.start(exe, Some(report.path()))?;
    let loops = Loops(
        (0..2)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "while :; do /bin/true; done"])
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| Error::io("starting a fork loop", e))
            })
            .collect::<Result<_, _>>()?,
    );
    let start = Instant::now();
    let mut curve = vec![(0, procfs::resident(daemon.pid())?.rss_kib)];
    while start.elapsed() < duration {
        interrupt::check()?;
        std::thread::sleep(SAMPLE_EVERY.min(duration.saturating_sub(start.elapsed())));
        curve.push((
            start.elapsed().as_secs(),
            procfs::resident(daemon.pid())?.rss_kib,
        ));
    }
    drop(loops);
    daemon.stop(STOP_TIMEOUT)?;
    let seen = recorded::read(report.path())?.processes_seen;
    progress!("memtrace bench: churn RSS (s, KiB) {curve:?}, {seen} processes seen");
    Ok(vec![row(&curve, seen)])
}

fn row(curve: &[(u64, u64)], seen: u64) -> Row {
    let peak_mb = curve
        .iter()
        .map(|&(_, kib)| targets::kib_to_mb(kib))
        .fold(0.0, f64::max);
    let last_kib = curve.last().map_or(0, |p| p.1);
    let points: Vec<String> = curve
        .iter()
        .map(|&(s, kib)| format!("{:.0} MB at {s} s", targets::kib_to_mb(kib)))
        .collect();
    Row {
        measurement: "footprint under fork churn (2 × `while :; do /bin/true; done`)".into(),
        condition: format!(
            "{} processes seen in {} s",
            targets::thousands(seen as f64),
            curve.last().map_or(0, |p| p.0)
        ),
        result: format!(
            "RSS {}; {:.2} KB per process seen",
            points.join(", "),
            last_kib as f64 * 1.024 / seen.max(1) as f64
        ),
        spread: "—".into(),
        target: format!("RSS ≤ {CHURN_RSS_MAX_MB} MB after an hour (flat curve)"),
        verdict: targets::at_most(peak_mb, CHURN_RSS_MAX_MB, "MB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_shows_the_curve_and_the_cost_per_process() {
        let row = row(&[(0, 30_000), (5, 39_000), (10, 40_000)], 40_000);
        assert!(
            row.result
                .starts_with("RSS 31 MB at 0 s, 40 MB at 5 s, 41 MB at 10 s;")
        );
        assert!(
            row.result.ends_with("1.02 KB per process seen"),
            "{}",
            row.result
        );
        assert_eq!(row.condition, "40 000 processes seen in 10 s");
        assert_eq!(row.verdict, "met");
    }
}
