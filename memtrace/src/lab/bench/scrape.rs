//! What one scrape of `memtrace serve` costs on a node with many containers: the exporter's
//! state for `cgroups` memory cgroups with Kubernetes paths (systemd driver, containerd), encoded
//! in each format as a scrape encodes it. Two shapes: a busy container (minor and file faults,
//! memcg reclaim, swap) and the worst case (all four fault classes and two stall kinds in every
//! cgroup), latencies spread over the histograms' range. In-process: the figure is the
//! encoding, which holds the state's lock while the session waits to fold the next interval.
//! Much of a large text exposition's time is the kernel zeroing the fresh pages of its buffer.
use std::time::{Duration, Instant};

use memtrace_common::{FaultClass, StallKind};

use super::{
    interrupt,
    table::Row,
    targets::{self, thousands},
};
use crate::{
    Error,
    metrics::{Metrics, MetricsSettings, Mount},
    report::metrics::{Format, SharedMetrics, encode},
    samples::{
        CgroupName, ClassSample, IntervalSample, LatencyStats, ProcessSample, StallSample,
        SwapByMemcg,
    },
};

/// How much to measure.
#[derive(Clone, Debug)]
pub struct ScrapePlan {
    pub cgroups: u64,
    /// Encodings timed per format (the median is shown).
    pub runs: usize,
}

/// The scrape time the issue holds serve to, for 1 000 cgroups.
pub const SCRAPE_MAX_MS: f64 = 50.0;

/// What each cgroup's series hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Minor and file-backed major faults, memcg reclaim stalls, swap: 3 histograms.
    Busy,
    /// Every fault class and two stall kinds: 6 histograms.
    Worst,
}

impl Shape {
    fn describe(self) -> &'static str {
        match self {
            Self::Busy => "minor and file faults, memcg reclaim, swap",
            Self::Worst => "all 4 fault classes, 2 stall kinds, swap",
        }
    }

    fn classes(self) -> &'static [FaultClass] {
        match self {
            Self::Busy => &[FaultClass::Minor, FaultClass::MajorFile],
            Self::Worst => &[
                FaultClass::Minor,
                FaultClass::Thp,
                FaultClass::MajorFile,
                FaultClass::MajorSwap,
            ],
        }
    }

    fn stalls(self) -> &'static [StallKind] {
        match self {
            Self::Busy => &[StallKind::MemcgReclaim],
            Self::Worst => &[StallKind::MemcgReclaim, StallKind::Compaction],
        }
    }
}

/// Encodes the state of `plan.cgroups` cgroups `plan.runs` times, in each shape and format.
pub fn run(plan: &ScrapePlan) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for shape in [Shape::Busy, Shape::Worst] {
        rows.extend(run_shape(plan, shape)?);
    }
    Ok(rows)
}

fn run_shape(plan: &ScrapePlan, shape: Shape) -> Result<Vec<Row>, Error> {
    let metrics = state(plan.cgroups, shape);
    let mut rows = Vec::new();
    for (format, name) in [
        (Format::OpenMetrics, "OpenMetrics text"),
        (Format::Protobuf, "protobuf with native histograms"),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..plan.runs {
            interrupt::check()?;
            let start = Instant::now();
            let body =
                encode(&metrics, format).map_err(|e| Error::io("encoding the metrics", e))?;
            times.push(start.elapsed());
            bytes = body.len();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let median = ms(times[times.len() / 2]);
        rows.push(Row {
            measurement: format!(
                "scrape of {} Kubernetes cgroups ({}; {} runs)",
                thousands(plan.cgroups as f64),
                shape.describe(),
                plan.runs
            ),
            condition: name.into(),
            result: format!(
                "{} ms per scrape (median), {} kB",
                targets::decimal(median),
                thousands(bytes as f64 / 1e3)
            ),
            spread: format!(
                "{} … {} ms",
                targets::decimal(ms(times[0])),
                targets::decimal(ms(times[times.len() - 1]))
            ),
            target: format!("< {SCRAPE_MAX_MS:.0} ms"),
            verdict: targets::at_most(median, SCRAPE_MAX_MS, "ms"),
        });
    }
    Ok(rows)
}

/// The exporter after one interval in which every one of `cgroups` pods' containers faulted,
/// stalled and swapped.
fn state(cgroups: u64, shape: Shape) -> SharedMetrics {
    let mut metrics = Metrics::new(MetricsSettings {
        mounts: vec![Mount {
            mount_point: "/sys/fs/cgroup".into(),
            root: "/".into(),
        }],
        ..MetricsSettings::default()
    });
    metrics.apply(&interval(cgroups, shape));
    std::sync::Arc::new(std::sync::Mutex::new(metrics))
}

fn interval(cgroups: u64, shape: Shape) -> IntervalSample {
    let stats = |base_ns: u64| {
        let mut stats = LatencyStats::new();
        for i in 0..64 {
            stats.record(base_ns << (i % 16));
        }
        stats
    };
    let processes = (0..cgroups)
        .map(|i| ProcessSample {
            pid: 10_000 + i as u32,
            comm: format!("app-{i}"),
            named: true,
            memcg_id: 1_000 + i,
            faults: shape
                .classes()
                .iter()
                .map(|&class| ClassSample {
                    class: class as u32,
                    latency: stats(500 + i),
                    ..ClassSample::default()
                })
                .collect(),
            stalls: shape
                .stalls()
                .iter()
                .map(|&kind| StallSample {
                    kind: kind as u32,
                    latency: stats(20_000 + i),
                    ..StallSample::default()
                })
                .collect(),
            ..ProcessSample::default()
        })
        .collect();
    IntervalSample {
        index: 0,
        start_ns: 0,
        end_ns: 1_000_000_000,
        processes,
        swap_by_memcg: (0..cgroups)
            .map(|i| SwapByMemcg {
                memcg_id: 1_000 + i,
                out_pages: 100 + i,
                in_pages: 50 + i,
            })
            .collect(),
        cgroups: (0..cgroups)
            .map(|i| CgroupName {
                id: 1_000 + i,
                path: Some(format!(
                    "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/\
                     kubepods-burstable-pod{i:08x}_aaaa_bbbb_cccc_{i:012x}.slice/\
                     cri-containerd-{i:064x}.scope"
                )),
                memory_limit_bytes: Some(512 << 20),
            })
            .collect(),
        ..IntervalSample::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::metrics::write;

    #[test]
    fn the_state_holds_every_cgroup_with_its_kubernetes_ids() {
        let metrics = state(20, Shape::Worst);
        let mut text = Vec::new();
        write(&metrics, Format::OpenMetrics, &mut text).expect("encode");
        let text = String::from_utf8(text).expect("utf-8");
        for i in [0u64, 19] {
            let container = format!("container_id=\"{i:064x}\"");
            assert!(text.contains(&container), "cgroup {i} missing");
        }
        let bucket_lines = text
            .lines()
            .filter(|l| l.starts_with("memtrace_page_fault_duration_seconds_bucket"))
            .filter(|l| l.contains("class=\"swap_in\""))
            .count();
        assert!(bucket_lines >= 20, "{bucket_lines} swap-in bucket lines");
    }

    #[test]
    fn rows_name_the_format_and_hold_the_target() {
        let rows = run(&ScrapePlan {
            cgroups: 10,
            runs: 3,
        })
        .expect("rows");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].condition, "OpenMetrics text");
        assert!(
            rows[0]
                .measurement
                .starts_with("scrape of 10 Kubernetes cgroups (minor"),
            "{}",
            rows[0].measurement
        );
        assert!(rows[3].measurement.contains("all 4 fault classes"));
        assert_eq!(rows[1].target, "< 50 ms");
    }
}
