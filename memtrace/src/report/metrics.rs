//! The exporter's exposition: the [`Metrics`] of `memtrace serve` in the format the scraper asks
//! for, through prometheus-client: OpenMetrics text, Prometheus text (0.0.4), or Prometheus
//! protobuf, whose histograms also carry native (sparse exponential) buckets.
//!
//! Names follow Prometheus' conventions: base units (seconds), `_total` on counters; every
//! per-cgroup series has a `cgroup` label (the memcg path relative to its hierarchy's root),
//! and `pod_uid` and `container_id` where that path is a Kubernetes pod's.
use std::{
    fmt,
    io::{self, Write},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use memtrace_common::{EventKind, FaultClass, StallKind};
use prometheus_client::{
    collector::Collector,
    encoding::{
        DescriptorEncoder, MetricEncoder, NativeHistogram, NativeHistogramBuckets,
        prometheus_protobuf, prometheus_text, text,
    },
    metrics::{MetricType, exemplar::Exemplar},
    registry::{Registry, Unit},
};

use crate::metrics::{CgroupLabels, Histogram, Metrics, hist::NATIVE_SCHEMA, labels::kube_ids};

/// The exporter's state, shared between the session that folds samples and the scrapes.
pub type SharedMetrics = Arc<Mutex<Metrics>>;

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus text 0.0.4, for scrapers that ask for nothing better.
    PrometheusText,
    /// Prometheus protobuf (length-delimited `MetricFamily`), with native histograms.
    Protobuf,
}

impl Format {
    /// The best format an `Accept` header allows (highest `q`; ties go to the earliest).
    pub fn negotiate(accept: &str) -> Self {
        let mut best = (Self::PrometheusText, 0.0f64);
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0;
            let mut proto_ok = true;
            for param in params {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.trim().parse().unwrap_or(0.0),
                    "proto" => proto_ok = value.trim() == "io.prometheus.client.MetricFamily",
                    "encoding" => proto_ok &= value.trim() == "delimited",
                    _ => {}
                }
            }
            let format = match media.as_str() {
                "application/vnd.google.protobuf" if proto_ok => Self::Protobuf,
                "application/openmetrics-text" => Self::OpenMetrics,
                "text/plain" | "*/*" => Self::PrometheusText,
                _ => continue,
            };
            if q > best.1 {
                best = (format, q);
            }
        }
        best.0
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Self::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; \
                 encoding=delimited"
            }
        }
    }
}

/// A registry that encodes the shared state.
fn registry(metrics: &SharedMetrics) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(MetricsCollector(Arc::clone(metrics))));
    registry
}

/// The metric families as the protobuf format carries them.
pub fn families(
    metrics: &SharedMetrics,
) -> Result<Vec<prometheus_protobuf::prometheus_data_model::MetricFamily>, fmt::Error> {
    prometheus_protobuf::encode(&registry(metrics))
}

/// Writes every metric in `format`.
pub fn write(metrics: &SharedMetrics, format: Format, out: &mut impl Write) -> io::Result<()> {
    out.write_all(&encode(metrics, format)?)
}

/// The length of the last text exposition of each format, to size the next one's buffer: a
/// node's exposition can be tens of MB, and growing a buffer to that by doubling costs more
/// (copies, page faults on fresh memory) than encoding it.
static LAST_LEN: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Every metric in `format`, as the body of a scrape.
pub fn encode(metrics: &SharedMetrics, format: Format) -> io::Result<Vec<u8>> {
    let registry = registry(metrics);
    let encoding = |e: fmt::Error| io::Error::other(format!("encoding the metrics: {e}"));
    let text = |slot: usize, encode: fn(&mut String, &Registry) -> fmt::Result| {
        let hint = LAST_LEN[slot].load(Ordering::Relaxed);
        let mut buffer = String::with_capacity(hint + hint / 8);
        encode(&mut buffer, &registry).map_err(encoding)?;
        LAST_LEN[slot].store(buffer.len(), Ordering::Relaxed);
        Ok(buffer.into_bytes())
    };
    match format {
        Format::Protobuf => prometheus_protobuf::encode_to_vec(&registry)
            .map_err(|e| io::Error::other(format!("encoding the metrics: {e:?}"))),
        Format::OpenMetrics => text(0, text::encode),
        Format::PrometheusText => text(1, prometheus_text::encode),
    }
}

/// Encodes the shared state on every scrape.
#[derive(Debug)]
struct MetricsCollector(SharedMetrics);

impl Collector for MetricsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        // A panic while folding leaves the last state: still worth serving.
        let metrics = self.0.lock().unwrap_or_else(|p| p.into_inner());
        encode_all(&metrics, &mut encoder)
    }
}

/// Labels of one series: pairs in order.
type Labels = Vec<(&'static str, String)>;

/// The cgroup labels of a series, and `extra` first.
fn cgroup_labels(extra: &[(&'static str, &str)], cgroup: &CgroupLabels) -> Labels {
    let mut labels: Labels = extra.iter().map(|(k, v)| (*k, v.to_string())).collect();
    labels.push(("cgroup", cgroup.path.clone()));
    if !cgroup.kube.pod_uid.is_empty() {
        labels.push(("pod_uid", cgroup.kube.pod_uid.clone()));
    }
    if !cgroup.kube.container_id.is_empty() {
        labels.push(("container_id", cgroup.kube.container_id.clone()));
    }
    labels
}

/// One family: its descriptor, then each series.
fn family<T>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    series: &[(Labels, T)],
    mut encode: impl FnMut(&mut MetricEncoder<'_>, &T) -> Result<(), fmt::Error>,
) -> Result<(), fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, value) in series {
        let mut one = metric.encode_family(labels)?;
        encode(&mut one, value)?;
    }
    Ok(())
}

fn counter(encoder: &mut MetricEncoder<'_>, value: &u64) -> Result<(), fmt::Error> {
    encoder.encode_counter::<Labels, _, f64>(value, None::<&Exemplar<Labels, f64>>)
}

fn gauge(encoder: &mut MetricEncoder<'_>, value: &i64) -> Result<(), fmt::Error> {
    encoder.encode_gauge(value)
}

fn histogram(encoder: &mut MetricEncoder<'_>, h: &&Histogram) -> Result<(), fmt::Error> {
    let (spans, deltas) = h.native_spans();
    let native = NativeHistogram {
        schema: NATIVE_SCHEMA,
        zero_threshold: 0.0,
        zero_count: 0,
        negative: NativeHistogramBuckets {
            spans: &[],
            deltas: &[],
        },
        positive: NativeHistogramBuckets {
            spans: &spans,
            deltas: &deltas,
        },
        created: None,
    };
    encoder.encode_histogram_with_native::<Labels>(
        h.sum_ns as f64 / 1e9,
        h.count,
        &h.buckets(),
        None,
        native,
    )
}

/// Every family, in a fixed order.
fn encode_all(metrics: &Metrics, encoder: &mut DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
    let seconds = Unit::Seconds;
    let cgroups = metrics.cgroups();
    let labelled: Vec<(CgroupLabels, _)> = cgroups
        .iter()
        .map(|(id, series)| (metrics.labels(*id), *series))
        .collect();

    let mut faults = Vec::new();
    let mut stalls = Vec::new();
    let mut untimed = Vec::new();
    let mut swap = Vec::new();
    for (labels, series) in &labelled {
        for class in FaultClass::ALL {
            if let Some(h) = &series.faults[class as usize] {
                faults.push((cgroup_labels(&[("class", class.name())], labels), h));
            }
        }
        for kind in StallKind::ALL {
            if let Some(h) = &series.stalls[kind as usize] {
                stalls.push((cgroup_labels(&[("kind", kind.name())], labels), h));
            }
        }
        if series.untimed_faults > 0 {
            untimed.push((cgroup_labels(&[], labels), series.untimed_faults));
        }
        if series.swap_in_pages > 0 || series.swap_out_pages > 0 {
            swap.push((
                cgroup_labels(&[("direction", "in")], labels),
                series.swap_in_pages,
            ));
            swap.push((
                cgroup_labels(&[("direction", "out")], labels),
                series.swap_out_pages,
            ));
        }
    }
    family(
        encoder,
        "memtrace_page_fault_duration",
        "Page-fault latency, from the CPU exception to the kernel's accounting of the fault, \
         by fault class and memory cgroup.",
        Some(&seconds),
        MetricType::Histogram,
        &faults,
        histogram,
    )?;
    family(
        encoder,
        "memtrace_untimed_page_faults",
        "Faults taken for a task without a CPU exception (get_user_pages: execve, \
         MAP_POPULATE, mlock): counted by the kernel as faults, never timed.",
        None,
        MetricType::Counter,
        &untimed,
        counter,
    )?;
    family(
        encoder,
        "memtrace_reclaim_stall_duration",
        "Time tasks stalled in reclaim, compaction or reclaim throttling, by stall kind and \
         memory cgroup.",
        Some(&seconds),
        MetricType::Histogram,
        &stalls,
        histogram,
    )?;
    family(
        encoder,
        "memtrace_swap_pages",
        "Pages written to swap (out) and read back (in), by the memory cgroup that owns them.",
        None,
        MetricType::Counter,
        &swap,
        counter,
    )?;
    encode_processes(metrics, encoder)?;
    encode_oom(metrics, encoder)?;
    encode_machine(metrics, encoder)
}

/// The `--per-process` families: the traced processes, by pid and name.
fn encode_processes(
    metrics: &Metrics,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), fmt::Error> {
    let seconds = Unit::Seconds;
    let mut faults = Vec::new();
    let mut stalls = Vec::new();
    let mut untimed = Vec::new();
    for (pid, series) in &metrics.processes {
        let labels = |extra: Option<(&'static str, &str)>| -> Labels {
            let mut labels: Labels = extra.iter().map(|(k, v)| (*k, v.to_string())).collect();
            labels.push(("pid", pid.to_string()));
            labels.push(("comm", series.comm.clone()));
            labels
        };
        for class in FaultClass::ALL {
            if let Some(h) = &series.faults[class as usize] {
                faults.push((labels(Some(("class", class.name()))), h));
            }
        }
        for kind in StallKind::ALL {
            if let Some(h) = &series.stalls[kind as usize] {
                stalls.push((labels(Some(("kind", kind.name()))), h));
            }
        }
        untimed.push((labels(None), series.untimed_faults));
    }
    family(
        encoder,
        "memtrace_process_page_fault_duration",
        "Page-fault latency of each process traced with --pid --per-process, by fault class.",
        Some(&seconds),
        MetricType::Histogram,
        &faults,
        histogram,
    )?;
    family(
        encoder,
        "memtrace_process_untimed_page_faults",
        "Faults taken for each process traced with --pid --per-process without a CPU exception.",
        None,
        MetricType::Counter,
        &untimed,
        counter,
    )?;
    family(
        encoder,
        "memtrace_process_reclaim_stall_duration",
        "Stalls of each process traced with --pid --per-process, by stall kind.",
        Some(&seconds),
        MetricType::Histogram,
        &stalls,
        histogram,
    )
}

/// OOM kills per domain, with the last victim's points.
fn encode_oom(metrics: &Metrics, encoder: &mut DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
    let mut kills = Vec::new();
    let mut points = Vec::new();
    let mut score = Vec::new();
    for ((constraint, cgroup), series) in metrics.oom() {
        let domain = CgroupLabels {
            dir: None,
            kube: kube_ids(cgroup),
            path: cgroup.clone(),
        };
        let labels = cgroup_labels(&[("constraint", constraint)], &domain);
        kills.push((labels.clone(), series.kills));
        points.push((labels.clone(), series.last_points));
        score.push((labels, series.last_score_per_mille));
    }
    family(
        encoder,
        "memtrace_oom_kills",
        "OOM kills, by constraint (memcg, global, cpuset, mempolicy) and the memory cgroup that \
         hit its limit (/ when the domain is the machine).",
        None,
        MetricType::Counter,
        &kills,
        counter,
    )?;
    family(
        encoder,
        "memtrace_oom_victim_badness_points",
        "The last OOM victim's oom_badness() points in its domain.",
        None,
        MetricType::Gauge,
        &points,
        gauge,
    )?;
    family(
        encoder,
        "memtrace_oom_victim_score_per_mille",
        "The last OOM victim's points per mille of its domain's pages: oom_score's scale, in \
         the right domain.",
        None,
        MetricType::Gauge,
        &score,
        gauge,
    )
}

/// Lost records, kswapd, and the exporter's own size.
fn encode_machine(
    metrics: &Metrics,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), fmt::Error> {
    let lost: Vec<(Labels, u64)> = EventKind::ALL
        .iter()
        .map(|kind| {
            (
                vec![("type", kind.name().to_string())],
                metrics.lost[*kind as usize],
            )
        })
        .chain(std::iter::once((
            vec![("type", "malformed".to_string())],
            metrics.malformed,
        )))
        .collect();
    family(
        encoder,
        "memtrace_lost_events",
        "Records the kernel programs could not send (ring buffer full; a lost batch of minor \
         faults counts each fault), and records that did not decode (type=malformed).",
        None,
        MetricType::Counter,
        &lost,
        counter,
    )?;
    let node = |nid: &u32| -> Labels { vec![("node", nid.to_string())] };
    let cpu: Vec<(Labels, f64)> = metrics
        .kswapd
        .iter()
        .map(|(nid, k)| (node(nid), k.cpu_ns as f64 / 1e9))
        .collect();
    let seconds = Unit::Seconds;
    family(
        encoder,
        "memtrace_kswapd_cpu",
        "CPU time of each node's kswapd thread (its /proc schedstat).",
        Some(&seconds),
        MetricType::Counter,
        &cpu,
        |e, v| e.encode_counter::<Labels, _, f64>(v, None),
    )?;
    let wakes: Vec<(Labels, u64)> = metrics
        .kswapd
        .iter()
        .map(|(nid, k)| (node(nid), k.wakes))
        .collect();
    family(
        encoder,
        "memtrace_kswapd_wakeups",
        "Times each node's kswapd started working (mm_vmscan_kswapd_wake).",
        None,
        MetricType::Counter,
        &wakes,
        counter,
    )?;
    let size = [(Labels::new(), metrics.tracked() as i64)];
    family(
        encoder,
        "memtrace_tracked_series_groups",
        "Memory cgroups and OOM domains the exporter holds series for (bounded: removed \
         cgroups age out).",
        None,
        MetricType::Gauge,
        &size,
        gauge,
    )
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
