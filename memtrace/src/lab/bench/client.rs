//! A real client: `redis-benchmark` against a loopback `redis-server` (Debian's packages; the
//! full bench installs them when absent), untraced and under memtrace, in alternating pairs.
//! Throughput and p99 latency as the client measures them: what a user of the traced machine
//! would see.
use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    interrupt,
    stats::{self, Pair},
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT, find_program},
};
use crate::Error;

/// How much to measure.
#[derive(Clone, Debug)]
pub struct ClientPlan {
    pub pairs: usize,
    /// Requests of each test (SET, then GET).
    pub requests: u64,
    /// Install redis with apt-get when absent.
    pub install: bool,
}

/// What one `redis-benchmark` run measured: the sum of the tests' request rates and the
/// highest of their p99 latencies.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClientRun {
    pub rps: f64,
    pub p99_ms: f64,
}

/// Runs the pairs; a machine without redis gets a row saying so.
pub fn run(exe: &Path, plan: &ClientPlan) -> Result<Vec<Row>, Error> {
    let measurement = format!(
        "real client: redis-benchmark SET+GET, 50 clients, {} requests each, loopback ({} pairs)",
        targets::thousands(plan.requests as f64),
        plan.pairs
    );
    let (server, benchmark) = match programs(plan.install) {
        Ok(found) => found,
        Err(reason) => {
            return Ok(vec![Row::unavailable(
                &measurement,
                &MEMTRACE.label(),
                "—",
                &reason,
            )]);
        }
    };
    let server = Server::start(&server)?;
    let client = |port: u16| benchmark_run(&benchmark, port, plan.requests);
    // Warm-up: the server's memory and the client's connections.
    client(server.port)?;
    let (mut noise, mut traced) = (Vec::new(), Vec::new());
    for round in 1..=plan.pairs {
        interrupt::check()?;
        let a = client(server.port)?;
        let b = client(server.port)?;
        noise.push((a, b));
        let daemon = MEMTRACE.start(exe, None)?;
        let test = client(server.port);
        daemon.stop(STOP_TIMEOUT)?;
        let test = test?;
        let base = client(server.port)?;
        progress!(
            "memtrace bench: real client {round}/{}: {:.0} -> {:.0} requests/s, p99 {:.3} -> {:.3} ms",
            plan.pairs,
            base.rps,
            test.rps,
            base.p99_ms,
            test.p99_ms
        );
        traced.push((base, test));
    }
    Ok(vec![
        row(&measurement, "untraced vs untraced (noise)", &noise),
        row(&measurement, &MEMTRACE.label(), &traced),
    ])
}

/// redis-server and redis-benchmark, installed first when asked.
fn programs(install: bool) -> Result<(PathBuf, PathBuf), String> {
    let found = || {
        Some((
            find_program("redis-server")?,
            find_program("redis-benchmark")?,
        ))
    };
    if let Some(found) = found() {
        return Ok(found);
    }
    if !install {
        return Err("redis not installed; --quick does not install it".into());
    }
    progress!("memtrace bench: installing redis-server with apt-get");
    let status = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "redis-server",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get install redis-server failed ({status})"));
    }
    found().ok_or_else(|| "redis-server or redis-benchmark not found after apt-get".into())
}

/// A redis-server of our own on a free loopback port, without persistence; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(binary: &Path) -> Result<Self, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("finding a free port for redis", e))?
            .port();
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("starting redis-server", e))?;
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(Error::io(
                    "starting redis-server",
                    std::io::Error::other("it did not listen within 10 s"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `redis-benchmark --csv` run of SET and GET.
fn benchmark_run(binary: &Path, port: u16, requests: u64) -> Result<ClientRun, Error> {
    let output = Command::new(binary)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-n",
            &requests.to_string(),
            "-c",
            "50",
            "-t",
            "set,get",
            "--csv",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running redis-benchmark", e))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_csv(&text).ok_or_else(|| Error::InvalidArgument {
        what: "redis-benchmark",
        value: output.status.to_string(),
        reason: format!(
            "no CSV results: {}",
            text.lines().next().unwrap_or_default()
        ),
    })
}

/// redis-benchmark's CSV (7.x): a header `"test","rps",...,"p99_latency_ms",...` and a line per
/// test.
pub fn parse_csv(text: &str) -> Option<ClientRun> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = fields(lines.next()?);
    let rps_at = header.iter().position(|h| h == "rps")?;
    let p99_at = header.iter().position(|h| h == "p99_latency_ms")?;
    let mut run = ClientRun::default();
    let mut tests = 0;
    for line in lines {
        let f = fields(line);
        run.rps += f.get(rps_at)?.parse::<f64>().ok()?;
        run.p99_ms = run.p99_ms.max(f.get(p99_at)?.parse().ok()?);
        tests += 1;
    }
    (tests > 0).then_some(run)
}

fn fields(line: &str) -> Vec<String> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').to_string())
        .collect()
}

fn row(measurement: &str, condition: &str, runs: &[(ClientRun, ClientRun)]) -> Row {
    let pairs = |f: fn(&ClientRun) -> f64| -> Vec<Pair> {
        runs.iter()
            .map(|(base, test)| Pair {
                base: f(base),
                test: f(test),
            })
            .collect()
    };
    let (Some(rps), Some(p99)) = (
        stats::paired(&pairs(|r| r.rps)),
        stats::paired(&pairs(|r| r.p99_ms)),
    ) else {
        return Row::unavailable(measurement, condition, "—", "no valid pair");
    };
    Row {
        measurement: measurement.into(),
        condition: condition.into(),
        result: format!(
            "throughput ×{:.3} ({} vs {} requests/s), p99 ×{:.3} ({:.3} vs {:.3} ms)",
            rps.ratio_median,
            targets::thousands(rps.test_median),
            targets::thousands(rps.base_median),
            p99.ratio_median,
            p99.test_median,
            p99.base_median
        ),
        spread: format!(
            "throughput {}, p99 {}",
            targets::pct_range(rps.ratio_min, rps.ratio_max),
            targets::pct_range(p99.ratio_min, p99.ratio_max)
        ),
        target: "—".into(),
        verdict: if condition.starts_with("untraced") {
            "noise floor".into()
        } else {
            "reference".into()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\
        \"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
        \"SET\",\"80000.00\",\"0.350\",\"0.100\",\"0.330\",\"0.500\",\"0.700\",\"2.000\"\n\
        \"GET\",\"90000.00\",\"0.300\",\"0.100\",\"0.290\",\"0.450\",\"0.650\",\"1.500\"\n";

    #[test]
    fn the_csv_gives_the_summed_rate_and_the_worst_p99() {
        assert_eq!(
            parse_csv(CSV),
            Some(ClientRun {
                rps: 170_000.0,
                p99_ms: 0.7
            })
        );
        assert_eq!(parse_csv(""), None);
        assert_eq!(parse_csv("\"test\",\"rps\"\n\"SET\",\"1\"\n"), None);
    }

    #[test]
    fn rows_give_both_ratios() {
        let run = |rps, p99_ms| ClientRun { rps, p99_ms };
        let row = row(
            "m",
            "memtrace record",
            &[(run(100_000.0, 1.0), run(99_000.0, 1.1))],
        );
        assert_eq!(
            row.result,
            "throughput ×0.990 (99 000 vs 100 000 requests/s), p99 ×1.100 (1.100 vs 1.000 ms)"
        );
        assert_eq!(row.verdict, "reference");
    }
}
