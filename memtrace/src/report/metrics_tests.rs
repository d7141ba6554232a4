use std::sync::{Arc, Mutex};

use memtrace_common::{FaultClass, StallKind};

use super::*;
use crate::{
    metrics::{Metrics, MetricsSettings},
    report::fixture,
};

fn shared() -> SharedMetrics {
    let mut metrics = Metrics::new(MetricsSettings {
        mounts: vec![crate::metrics::Mount {
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
        }],
        ..MetricsSettings::default()
    });
    for sample in fixture::intervals() {
        metrics.apply(&sample);
    }
    Arc::new(Mutex::new(metrics))
}

fn rendered(format: Format) -> String {
    let mut out = Vec::new();
    write(&shared(), format, &mut out).expect("renders");
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn openmetrics_text_has_every_family() {
    let text = rendered(Format::OpenMetrics);
    for line in [
        "# TYPE memtrace_page_fault_duration_seconds histogram",
        "# UNIT memtrace_page_fault_duration_seconds seconds",
        "# TYPE memtrace_reclaim_stall_duration_seconds histogram",
        "# TYPE memtrace_swap_pages counter",
        "memtrace_swap_pages_total{direction=\"out\",cgroup=\"/db.slice\"} 1400",
        "memtrace_swap_pages_total{direction=\"in\",cgroup=\"/db.slice\"} 50",
        "memtrace_swap_pages_total{direction=\"out\",cgroup=\"(id 999)\"} 100",
        "memtrace_lost_events_total{type=\"fault\"} 3",
        "memtrace_lost_events_total{type=\"stall\"} 1",
        "memtrace_kswapd_wakeups_total{node=\"0\"} 4",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // The fixture's faults carry no memcg: they count under `(unknown)`, every one of them
    // (8 minor, 2 major file, 1 swap-in), with +Inf equal to the count.
    for (class, count) in [("minor", 8), ("major_file", 2), ("swap_in", 1)] {
        let labels = format!("class=\"{class}\",cgroup=\"(unknown)\"");
        let want = [
            format!("memtrace_page_fault_duration_seconds_count{{{labels}}} {count}"),
            format!("memtrace_page_fault_duration_seconds_bucket{{le=\"+Inf\",{labels}}} {count}"),
        ];
        for line in want {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
    // The 3 ms major faults are below the bound 2^22 ns and not below 2^21 ns.
    let bucket = |le: &str| {
        format!(
            "memtrace_page_fault_duration_seconds_bucket{{le=\"{le}\",class=\"major_file\",cgroup=\"(unknown)\"}}"
        )
    };
    assert!(
        text.contains(&format!("{} 0", bucket("0.002097152"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} 2", bucket("0.004194304"))),
        "{text}"
    );
    let oom = text
        .lines()
        .find(|l| l.starts_with("memtrace_oom_kills_total{"))
        .expect("an OOM kill line");
    assert!(
        oom.ends_with(" 1") && oom.contains("constraint=\""),
        "{oom}"
    );
}

#[test]
fn prometheus_text_names_counters_with_total() {
    let text = rendered(Format::PrometheusText);
    assert!(
        text.contains("memtrace_swap_pages_total{direction=\"out\",cgroup=\"/db.slice\"} 1400")
    );
    assert!(text.contains("# TYPE memtrace_page_fault_duration_seconds histogram"));
    assert!(!text.contains("# EOF"), "{text}");
}

#[test]
fn protobuf_histograms_carry_native_buckets() {
    let families = families(&shared()).expect("encodes");
    let faults = families
        .iter()
        .find(|f| f.name == "memtrace_page_fault_duration_seconds")
        .expect("fault family");
    for metric in &faults.metric {
        let h = metric.histogram.as_ref().expect("a histogram");
        assert_eq!(h.schema, 3);
        // The deltas add up to the counts of the buckets; the counts to the sample count.
        let mut count = 0i64;
        let mut total = 0i64;
        for delta in &h.positive_delta {
            count += delta;
            total += count;
        }
        assert_eq!(total as u64, h.sample_count, "{h:?}");
        let spans: u32 = h.positive_span.iter().map(|s| s.length).sum();
        assert_eq!(spans as usize, h.positive_delta.len());
        assert_eq!(
            h.bucket.last().map(|b| b.cumulative_count),
            Some(h.sample_count)
        );
    }
    assert!(!faults.metric.is_empty());
}

#[test]
fn the_accept_header_picks_the_format() {
    let prometheus_native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    assert_eq!(Format::negotiate(prometheus_native), Format::Protobuf);
    let prometheus_classic = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::negotiate(prometheus_classic), Format::OpenMetrics);
    assert_eq!(Format::negotiate(""), Format::PrometheusText);
    assert_eq!(Format::negotiate("*/*"), Format::PrometheusText);
    assert_eq!(Format::negotiate("text/html"), Format::PrometheusText);
    // Protobuf of another message, or not delimited, is not ours to send.
    assert_eq!(
        Format::negotiate("application/vnd.google.protobuf;proto=other.Message"),
        Format::PrometheusText
    );
}

/// 1 000 cgroups, each with a process whose minor faults spread over 300 latencies and a
/// reclaim stall: every cgroup has its series, in every format. (The time a scrape takes is
/// printed, not asserted: `cargo test --release -- --nocapture scrape_of_1000`.)
#[test]
fn a_scrape_of_1000_cgroups_has_all_their_series() {
    use crate::samples::{CgroupName, ClassSample, IntervalSample, ProcessSample, StallSample};
    let mut metrics = Metrics::new(MetricsSettings::default());
    let mut sample = IntervalSample::default();
    for i in 0..1000u64 {
        let latencies: Vec<u64> = (0..300).map(|j| 500 + j * 37 + i).collect();
        sample.processes.push(ProcessSample {
            pid: 1000 + i as u32,
            memcg_id: 10_000 + i,
            faults: vec![ClassSample {
                class: FaultClass::Minor as u32,
                latency: fixture::stats(&latencies),
                ..ClassSample::default()
            }],
            stalls: vec![StallSample {
                kind: StallKind::MemcgReclaim as u32,
                latency: fixture::stats(&[2_000_000 + i]),
                ..StallSample::default()
            }],
            ..ProcessSample::default()
        });
        sample.cgroups.push(CgroupName {
            id: 10_000 + i,
            path: Some(format!("/kubepods.slice/pod-{i}.slice")),
            memory_limit_bytes: None,
        });
    }
    metrics.apply(&sample);
    let shared = Arc::new(Mutex::new(metrics));
    for format in [
        Format::OpenMetrics,
        Format::PrometheusText,
        Format::Protobuf,
    ] {
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        write(&shared, format, &mut out).expect("renders");
        eprintln!("{format:?}: {} bytes in {:?}", out.len(), start.elapsed());
        if format != Format::Protobuf {
            let text = String::from_utf8(out).expect("UTF-8");
            let counts = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
            assert_eq!(
                counts("memtrace_page_fault_duration_seconds_count{class=\"minor\""),
                1000
            );
            assert_eq!(
                counts("memtrace_reclaim_stall_duration_seconds_count{kind=\"memcg_reclaim\""),
                1000
            );
        }
    }
    let families = families(&shared).expect("encodes");
    let faults = families
        .iter()
        .find(|f| f.name == "memtrace_page_fault_duration_seconds")
        .expect("fault family");
    assert_eq!(faults.metric.len(), 1000);
}

#[test]
fn per_process_series_only_for_the_listed_pids() {
    let mut metrics = Metrics::new(MetricsSettings {
        per_process: vec![100],
        ..MetricsSettings::default()
    });
    for sample in fixture::intervals() {
        metrics.apply(&sample);
    }
    assert_eq!(
        metrics.processes.keys().copied().collect::<Vec<_>>(),
        vec![100]
    );
    let mut out = Vec::new();
    write(
        &Arc::new(Mutex::new(metrics)),
        Format::OpenMetrics,
        &mut out,
    )
    .expect("renders");
    let text = String::from_utf8(out).expect("UTF-8");
    // postgres[100]: 4 minor faults, 2 major file faults, 1 swap-in.
    for line in [
        "memtrace_process_page_fault_duration_seconds_count{class=\"minor\",pid=\"100\",comm=\"postgres\"} 4",
        "memtrace_process_page_fault_duration_seconds_count{class=\"major_file\",pid=\"100\",comm=\"postgres\"} 2",
        "memtrace_process_reclaim_stall_duration_seconds_count{kind=\"memcg_reclaim\",pid=\"100\",comm=\"postgres\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(!text.contains("pid=\"200\""), "{text}");
}
