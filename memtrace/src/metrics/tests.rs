use memtrace_common::{EventKind, FaultClass, StallKind};

use super::{hist::*, *};
use crate::report::fixture::{self, MS, S, stats};

fn folded() -> Metrics {
    let mut metrics = Metrics::new(MetricsSettings {
        expire_ns: 60 * S,
        mounts: vec![super::Mount {
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
        }],
        ..MetricsSettings::default()
    });
    for sample in fixture::intervals() {
        metrics.apply(&sample);
    }
    metrics
}

#[test]
fn classic_buckets_are_hdr_bucket_bounds() {
    let bounds = classic_bounds_s();
    assert_eq!(bounds[0], 256e-9);
    assert_eq!(bounds[1], 512e-9);
    assert_eq!(bounds[CLASSIC_BUCKETS - 2], 17.179869184);
    assert!(bounds[CLASSIC_BUCKETS - 1].is_infinite());
    let mut h = Histogram::default();
    // 255 and 256 ns are below 2^8 and 2^9; 2047 below 2^11; 3 s below 2^32 ns; 60 s is +Inf.
    h.add(&stats(&[1, 255, 256, 2047, 3 * S, 60 * S]));
    let mut total = 0;
    let cumulative: Vec<(f64, u64)> = h
        .buckets()
        .into_iter()
        .map(|(bound, count)| {
            total += count;
            (bound, total)
        })
        .collect();
    assert_eq!(cumulative[0], (256e-9, 2));
    assert_eq!(cumulative[1], (512e-9, 3));
    assert_eq!(cumulative[3].1, 4);
    let at = |bound: f64| cumulative.iter().find(|(b, _)| *b == bound).map(|c| c.1);
    assert_eq!(at((1u64 << 31) as f64 / 1e9), Some(4));
    assert_eq!(at((1u64 << 32) as f64 / 1e9), Some(5));
    assert_eq!(cumulative.last(), Some(&(f64::INFINITY, 6)));
    assert_eq!(h.count, 6);
    assert_eq!(h.sum_ns, 1 + 255 + 256 + 2047 + 63 * S);
}

#[test]
fn native_buckets_follow_schema_3() {
    // 1 s is the upper bound of bucket 0; just above it is bucket 1; 2 s is bucket 8.
    assert_eq!(native_index(S), 0);
    assert_eq!(native_index(S + 1_000_000), 1);
    assert_eq!(native_index(2 * S), 8);
    assert_eq!(native_index(S / 2), -8);
    for ns in [1, 700, 1_000, 123_456, 7 * MS, 3 * S] {
        let i = native_index(ns);
        let seconds = ns as f64 / 1e9;
        assert!(
            native_upper_s(i - 1) < seconds && seconds <= native_upper_s(i),
            "{ns}"
        );
    }
}

#[test]
fn native_spans_delta_encode_the_counts() {
    let mut h = Histogram::default();
    // Buckets 0 (1 s) x2, 1 (1.05 s) x1, then 8 (2 s) x3.
    h.add(&stats(&[S, S, 1_050_000_000, 2 * S, 2 * S, 2 * S]));
    assert_eq!(h.native, vec![(0, 2), (1, 1), (8, 3)]);
    let (spans, deltas) = h.native_spans();
    assert_eq!(spans, vec![(0, 2), (6, 1)]);
    assert_eq!(deltas, vec![2, -1, 2]);
}

#[test]
fn the_fixture_folds_into_cgroup_series() {
    let metrics = folded();
    // Swap by owning memcg: 501 (`/db.slice`) 1400 out, 50 in; 999 (no path) 100 out, 10 in.
    let cgroups = metrics.cgroups();
    let by_id = |id: u64| cgroups.iter().find(|(i, _)| *i == id).map(|(_, s)| *s);
    let db = by_id(501).expect("memcg 501");
    assert_eq!((db.swap_out_pages, db.swap_in_pages), (1400, 50));
    let unnamed = by_id(999).expect("memcg 999");
    assert_eq!((unnamed.swap_out_pages, unnamed.swap_in_pages), (100, 10));
    assert_eq!(metrics.labels(501).path, "/db.slice");
    assert_eq!(metrics.labels(999).path, "(id 999)");
    // Every fault and stall of the fixture: 4 + 3 + 1 minor, 2 major file, 1 swap-in;
    // 1 compaction, 3 memcg reclaim, 1 direct reclaim stall.
    let faults = |class: FaultClass| -> u64 {
        cgroups
            .iter()
            .filter_map(|(_, s)| s.faults[class as usize].as_ref())
            .map(|h| h.count)
            .sum()
    };
    assert_eq!(faults(FaultClass::Minor), 8);
    assert_eq!(faults(FaultClass::MajorFile), 2);
    assert_eq!(faults(FaultClass::MajorSwap), 1);
    let stalls = |kind: StallKind| -> u64 {
        cgroups
            .iter()
            .filter_map(|(_, s)| s.stalls[kind as usize].as_ref())
            .map(|h| h.count)
            .sum()
    };
    assert_eq!(stalls(StallKind::Compaction), 1);
    assert_eq!(stalls(StallKind::MemcgReclaim), 3);
    assert_eq!(stalls(StallKind::DirectReclaim), 1);
    assert_eq!(metrics.lost[EventKind::Fault as usize], 3);
    assert_eq!(metrics.lost[EventKind::Stall as usize], 1);
    assert_eq!(metrics.kswapd.get(&0).map(|k| k.wakes), Some(4));
    assert_eq!(metrics.intervals, 2);
}

#[test]
fn oom_kills_count_in_their_domain() {
    let metrics = folded();
    let kills: u64 = metrics.oom().values().map(|s| s.kills).sum();
    assert_eq!(kills, 1, "{:?}", metrics.oom());
    let ((constraint, cgroup), series) = metrics.oom().iter().next().expect("one domain");
    assert!(
        !constraint.is_empty() && cgroup.starts_with('/'),
        "{constraint} {cgroup}"
    );
    assert!(series.last_points > 0, "{series:?}");
}

#[test]
fn removed_cgroups_age_out_after_the_expiry() {
    let mut metrics = folded();
    let end = metrics.last_end_ns;
    let before = metrics.tracked();
    let ids = |m: &Metrics| -> Vec<u64> { m.cgroups().iter().map(|(id, _)| *id).collect() };
    // Nothing goes before the expiry, even when its directory is gone; the check is due every
    // tenth of the expiry.
    assert!(metrics.expire_due(end));
    metrics.expire(end + 30 * S, |_| false);
    assert!(!metrics.expire_due(end + 35 * S));
    assert!(metrics.expire_due(end + 36 * S));
    assert_eq!(metrics.tracked(), before, "dropped before the expiry");
    // After it, a cgroup whose directory exists stays, however long idle; one with no known
    // directory (999) goes.
    metrics.expire(end + 3600 * S, |_| true);
    assert!(ids(&metrics).contains(&501), "{:?}", ids(&metrics));
    assert!(!ids(&metrics).contains(&999), "{:?}", ids(&metrics));
    assert_eq!(metrics.labels(999).path, "(id 999)");
    // Once removed, it goes too, and so does the OOM domain of the fixture's kill.
    metrics.expire(end + 3600 * S, |_| false);
    assert!(metrics.cgroups().is_empty());
    assert_eq!(metrics.tracked(), 0);
}
