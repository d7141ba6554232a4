//! The comparison on hand-made runs: ten 1 s intervals of a process `db` whose faults and
//! stalls are chosen per interval, with swap for its memory cgroup. The renderers' tests use
//! [`steady_diff`] and [`tight_diff`].
use memtrace_common::{FaultClass, StallKind};

use super::{
    Diff, Run, compare,
    noise::{Figure, Verdict},
    series::{MatchBy, Series},
};
use crate::{
    model::Model,
    report::fixture::{MS, S, START, faults, header, stall},
    samples::{CgroupName, Header, IntervalSample, ProcessSample, SwapByMemcg, SwapByTask},
};

/// What `db` does in one interval.
#[derive(Clone, Copy, Default)]
struct Load {
    /// Minor faults of 1 µs (plus a 2 µs one in odd intervals, for some spread).
    minor: u64,
    /// Swap-ins of 50 µs, one page each.
    swap_in: u64,
    /// Memcg reclaim stalls of 1 ms.
    reclaim: u64,
}

fn interval(index: u64, pid: u32, load: Load, memcg: (&str, u64)) -> IntervalSample {
    let mut minor = vec![1_000; load.minor as usize];
    if index % 2 == 1 {
        minor.push(2_000);
    }
    let mut faults_of = vec![faults(FaultClass::Minor, &minor)];
    if load.swap_in > 0 {
        let latencies = vec![50_000; load.swap_in as usize];
        faults_of.push(faults(FaultClass::MajorSwap, &latencies));
    }
    let stalls = if load.reclaim > 0 {
        let latencies = vec![MS; load.reclaim as usize];
        vec![stall(StallKind::MemcgReclaim, &latencies, 32, &[])]
    } else {
        Vec::new()
    };
    let (path, limit) = memcg;
    IntervalSample {
        index,
        start_ns: START + index * S,
        end_ns: START + (index + 1) * S,
        processes: vec![ProcessSample {
            pid,
            start_ns: 5,
            comm: "db".into(),
            named: true,
            faults: faults_of,
            swapin_pages: load.swap_in,
            stalls,
            ..ProcessSample::default()
        }],
        swap_by_task: vec![SwapByTask {
            pid,
            comm: "db".into(),
            out_pages: 4 * load.reclaim,
            in_pages: load.swap_in,
        }],
        swap_by_memcg: vec![SwapByMemcg {
            memcg_id: 77,
            out_pages: 4 * load.reclaim,
            in_pages: load.swap_in,
        }],
        cgroups: (index == 0)
            .then(|| CgroupName {
                id: 77,
                path: Some(path.into()),
                memory_limit_bytes: Some(limit),
            })
            .into_iter()
            .collect(),
        ..IntervalSample::default()
    }
}

/// A run: its model and its series, folded from the same intervals.
struct Folded {
    model: Model,
    series: Series,
}

fn fold(header: Header, samples: &[IntervalSample], match_by: MatchBy) -> Folded {
    let mut model = Model::new(header);
    let mut series = Series::new(match_by);
    for sample in samples {
        model.apply(sample);
        series.apply(sample);
    }
    Folded { model, series }
}

/// Ten intervals of `db` (pid `pid`) under the load `load(i)`, its memcg at `memcg`.
fn run(pid: u32, memcg: (&str, u64), load: impl Fn(u64) -> Load, by: MatchBy) -> Folded {
    let samples: Vec<IntervalSample> = (0..10).map(|i| interval(i, pid, load(i), memcg)).collect();
    fold(header(), &samples, by)
}

fn as_run<'a>(path: &str, folded: &'a Folded) -> Run<'a> {
    Run {
        path: path.into(),
        model: &folded.model,
        series: &folded.series,
        problem: None,
    }
}

fn diff(a: &Folded, b: &Folded, match_by: MatchBy) -> Diff {
    compare(&as_run("a.mtr", a), &as_run("b.mtr", b), match_by)
}

const BOX_A: (&str, u64) = ("/sys/fs/cgroup/memory/box-4242-0", 64 << 20);
const BOX_B: (&str, u64) = ("/sys/fs/cgroup/memory/box-4242-1", 40 << 20);

fn steady(_: u64) -> Load {
    Load {
        minor: 100,
        swap_in: 0,
        reclaim: 5,
    }
}

/// The same load as `steady`, plus swap-ins in every third interval and 4 times the reclaim.
fn tight(i: u64) -> Load {
    Load {
        swap_in: if i.is_multiple_of(3) { 300 } else { 0 },
        reclaim: 20,
        ..steady(i)
    }
}

/// The same steady load twice (pids 100 and 200, the same memcg).
pub(crate) fn steady_diff() -> Diff {
    let a = run(100, BOX_A, steady, MatchBy::Comm);
    let b = run(200, BOX_A, steady, MatchBy::Comm);
    diff(&a, &b, MatchBy::Comm)
}

/// The steady load against the tight one, in a memcg of 40 MiB instead of 64 MiB.
pub(crate) fn tight_diff() -> Diff {
    let a = run(100, BOX_A, steady, MatchBy::Comm);
    let b = run(300, BOX_B, tight, MatchBy::Comm);
    diff(&a, &b, MatchBy::Comm)
}

fn verdicts(diff: &Diff, key: &str, kind: &str) -> Vec<(Figure, Verdict)> {
    let process = diff.processes.iter().find(|p| p.key == key);
    let row = process.and_then(|p| p.rows.iter().find(|r| r.kind == kind));
    let row = row.unwrap_or_else(|| panic!("no row {key} {kind} in {diff:#?}"));
    row.figures.iter().map(|f| (f.figure, f.verdict)).collect()
}

#[test]
fn the_same_load_twice_is_noise_only() {
    let diff = steady_diff();
    assert_eq!(diff.differing_figures, 0, "{diff:#?}");
    assert_eq!(diff.differing_settings, 0);
    assert_eq!(diff.processes.len(), 1, "pids 100 and 200 match by name");
    let db = &diff.processes[0];
    assert_eq!(
        (db.key.as_str(), db.processes_a, db.processes_b),
        ("db", 1, 1)
    );
    let kinds: Vec<&str> = db.rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["minor", "memcg_reclaim"]);
    let minor = &db.rows[0];
    assert_eq!((minor.count_a, minor.count_b), (1_005, 1_005));
    let rate = &minor.figures[0];
    assert_eq!(rate.figure, Figure::RatePerS);
    assert_eq!(
        (rate.a, rate.b, rate.change),
        (Some(100.5), Some(100.5), Some(0.0))
    );
    // The two kinds of interval (1000 and 1001 faults) give the band: s = 0.527, n = 10.
    let band = rate.band_a.expect("ten intervals");
    assert!(
        (band.hi - 100.5 - 2.0 * 0.527 / 10f64.sqrt()).abs() < 1e-3,
        "{band:?}"
    );
    assert!(
        verdicts(&diff, "db", "minor")
            .iter()
            .all(|(_, v)| *v != Verdict::Differs)
    );
    // 1005 faults: p99 and p99.9 need 1000 and 10000 in each run.
    let judged: Vec<Verdict> = minor.figures.iter().map(|f| f.verdict).collect();
    use Verdict::{Noise, TooFew};
    assert_eq!(judged, [Noise, Noise, Noise, Noise, TooFew, Noise]);
}

#[test]
fn a_tighter_limit_flags_swap_ins_reclaim_and_the_limit() {
    let diff = tight_diff();
    // Swap-ins from none: the rate and share differ; A has no percentiles to compare.
    use Figure::*;
    use Verdict::*;
    assert_eq!(
        verdicts(&diff, "db", "swap_in"),
        [
            (RatePerS, Differs),
            (Share, Differs),
            (P50Ns, TooFew),
            (P99Ns, TooFew),
            (P999Ns, TooFew),
            (MaxNs, TooFew)
        ]
    );
    let swap_in = &diff.processes[0].rows[1];
    assert_eq!((swap_in.count_a, swap_in.count_b), (0, 1_200));
    assert_eq!(swap_in.figures[0].change, None, "from nothing: no ratio");
    // Four times the reclaim stalls, each as long: rate and share, not the latencies.
    assert_eq!(
        verdicts(&diff, "db", "memcg_reclaim"),
        [
            (RatePerS, Differs),
            (Share, Differs),
            (P50Ns, Noise),
            (P99Ns, TooFew),
            (P999Ns, TooFew),
            (MaxNs, Noise)
        ]
    );
    assert!(
        verdicts(&diff, "db", "minor")
            .iter()
            .all(|(_, v)| *v != Differs)
    );
    // Swap: in and out differ, in total and for the memcg, matched across the renaming.
    let [total_in, total_out] = [&diff.swap.total[0], &diff.swap.total[1]];
    assert_eq!((total_in.kind.as_str(), total_in.count_b), ("in", 1_200));
    assert_eq!((total_out.count_a, total_out.count_b), (200, 800));
    assert!(total_in.differs && total_out.differs);
    let [memcg] = diff.swap.memcgs.as_slice() else {
        panic!("one memcg pair: {:#?}", diff.swap.memcgs);
    };
    assert_eq!(memcg.path_a.as_deref(), Some(BOX_A.0));
    assert_eq!(memcg.path_b.as_deref(), Some(BOX_B.0));
    assert_eq!(
        (memcg.memory_limit_a_bytes, memcg.memory_limit_b_bytes),
        (Some(64 << 20), Some(40 << 20))
    );
    assert!(memcg.limit_differs && memcg.rows.iter().all(|r| r.differs));
    // 2 process rows × 2 figures, 2 total rows, 2 memcg rows.
    assert_eq!(diff.differing_figures, 8);
    assert_eq!(diff.differing_settings, 1, "the limit");
}

#[test]
fn the_same_mean_spread_differently_is_noise() {
    // 50 swap-ins a second on average in both: every interval, or 250 in every fifth.
    let even = |i| Load {
        swap_in: 50,
        ..steady(i)
    };
    let bursty = |i: u64| Load {
        swap_in: if i.is_multiple_of(5) { 250 } else { 0 },
        ..steady(i)
    };
    let a = run(100, BOX_A, even, MatchBy::Comm);
    let b = run(100, BOX_A, bursty, MatchBy::Comm);
    let diff = diff(&a, &b, MatchBy::Comm);
    assert_eq!(diff.differing_figures, 0, "{diff:#?}");
    let swap_in = &diff.processes[0].rows[1];
    assert_eq!(swap_in.figures[0].change, Some(0.0));
}

#[test]
fn pids_match_only_themselves() {
    let a = run(100, BOX_A, steady, MatchBy::Pid);
    let b = run(200, BOX_A, steady, MatchBy::Pid);
    let diff = diff(&a, &b, MatchBy::Pid);
    let keys: Vec<(&str, u64, u64)> = diff
        .processes
        .iter()
        .map(|p| (p.key.as_str(), p.processes_a, p.processes_b))
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.contains(&("100", 1, 0)) && keys.contains(&("200", 0, 1)),
        "{keys:?}"
    );
    // A process that vanished: its rate went to 0 beyond noise, its latencies cannot compare.
    let gone = diff
        .processes
        .iter()
        .find(|p| p.key == "100")
        .expect("pid 100");
    assert!(gone.differs);
    assert_eq!(gone.rows[0].figures[2].b, None, "no p50 without faults");
}

#[test]
fn settings_that_differ_are_counted_and_others_are_not() {
    let a = run(100, BOX_A, steady, MatchBy::Comm);
    let mut changed = header();
    changed.host.tunables.swappiness = Some(10);
    changed.host.tunables.thp_enabled = None;
    let samples: Vec<IntervalSample> = (0..10)
        .map(|i| interval(i, 100, steady(i), BOX_A))
        .collect();
    let b = fold(changed, &samples, MatchBy::Comm);
    let diff = diff(&a, &b, MatchBy::Comm);
    let differing: Vec<(&str, Option<&str>, Option<&str>)> = diff
        .settings
        .iter()
        .filter(|s| s.differs)
        .map(|s| (s.name.as_str(), s.a.as_deref(), s.b.as_deref()))
        .collect();
    assert_eq!(
        differing,
        [
            ("swappiness", Some("60"), Some("10")),
            ("thp_enabled", Some("madvise"), None)
        ]
    );
    assert_eq!(diff.settings[0].name, "kernel");
    assert_eq!(diff.settings[0].a.as_deref(), Some("6.8.0-test"));
    assert_eq!((diff.differing_settings, diff.differing_figures), (2, 0));
}

/// No interval in A, one in B: no bands, and B's memcg has no counterpart in A.
pub(crate) fn one_interval_diff() -> Diff {
    let samples = [interval(0, 100, tight(0), BOX_A)];
    let a = fold(header(), &samples[..0], MatchBy::Comm);
    let b = fold(header(), &samples, MatchBy::Comm);
    diff(&a, &b, MatchBy::Comm)
}

#[test]
fn one_interval_cannot_tell_anything() {
    let diff = one_interval_diff();
    assert_eq!(diff.differing_figures, 0);
    assert_eq!((diff.a.intervals, diff.b.intervals), (0, 1));
    assert!(
        verdicts(&diff, "db", "swap_in")
            .iter()
            .all(|(_, v)| *v == Verdict::TooFew)
    );
}
