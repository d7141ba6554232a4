use super::*;
use crate::samples::growth::{MemoryInterval, MemoryReading};

const S: u64 = 1_000_000_000;

fn reading(pid: u32, anon_kb: u64, memcg_id: u64) -> MemoryReading {
    MemoryReading {
        pid,
        start_ns: 5,
        comm: "leaker".into(),
        memcg_id,
        rss_anon_kb: anon_kb,
        rss_file_kb: 1000,
        ..MemoryReading::default()
    }
}

fn interval(at_s: u64, readings: Vec<MemoryReading>, memcgs: Vec<MemcgUsage>) -> IntervalSample {
    let mut sample = IntervalSample {
        end_ns: at_s * S,
        ..IntervalSample::default()
    };
    sample.machine.mem_available_kb = 1 << 30;
    sample.machine.swap_total_kb = 1 << 20;
    sample.memory = MemoryInterval {
        read_ns: at_s * S,
        readings,
        memcgs,
        ..MemoryInterval::default()
    };
    sample
}

#[test]
fn a_line_fits_exactly() {
    let mut fit = Fit::default();
    for x in 0..20 {
        fit.add(f64::from(x), 3.0 * f64::from(x) + 5.0);
    }
    assert!((fit.slope().expect("a value") - 3.0).abs() < 1e-9);
    assert!((fit.r2().expect("a value") - 1.0).abs() < 1e-12);
    assert_eq!(fit.span_s(), 19.0);
    let mut flat = Fit::default();
    flat.add(0.0, 1.0);
    flat.add(1.0, 1.0);
    assert_eq!(flat.slope(), Some(0.0));
    assert_eq!(flat.r2(), None, "no variance, nothing to explain");
    assert_eq!(Fit::default().slope(), None);
}

#[test]
fn merged_fits_equal_one_fit_of_all_points() {
    let points: Vec<(f64, f64)> = (0..30)
        .map(|i| (f64::from(i), f64::from(i * i % 7)))
        .collect();
    let mut all = Fit::default();
    let (mut a, mut b) = (Fit::default(), Fit::default());
    for (i, &(x, y)) in points.iter().enumerate() {
        all.add(x, y);
        if i < 12 { a.add(x, y) } else { b.add(x, y) }
    }
    let merged = a.merged(&b);
    assert_eq!(merged.n, all.n);
    assert!((merged.slope().expect("a value") - all.slope().expect("a value")).abs() < 1e-9);
    assert_eq!(merged.first_x, 0.0);
    assert_eq!(merged.last_x, 29.0);
}

#[test]
fn a_steady_leak_is_flagged_and_its_memcg_forecast_is_headroom_over_rate() {
    let mut growth = Growth::new(0);
    let memcg = |used_kb| {
        vec![MemcgUsage {
            id: 9,
            usage_kb: used_kb,
            limit_kb: Some(1 << 20),
        }]
    };
    // 8 MiB a second from 100 MiB; the memcg holds the leak plus 10 MiB.
    for t in 1..=60u64 {
        let anon = 100 * 1024 + 8 * 1024 * t;
        growth.apply(&interval(
            t,
            vec![reading(42, anon, 9)],
            memcg(anon + 10 * 1024),
        ));
    }
    let row = growth.live_row(42).expect("tracked");
    assert!(row.steady, "{row:?}");
    assert!((row.slope_kb_s.expect("a value") - 8192.0).abs() < 1e-6);
    assert!((row.window_slope_kb_s.expect("a value") - 8192.0).abs() < 1e-6);
    assert!(row.r2.expect("a value") > 0.999);
    let forecast = row.forecast.expect("a memcg with a limit");
    assert_eq!(forecast.limit, LimitKind::Memcg);
    let used = 100 * 1024 + 8 * 1024 * 60 + 10 * 1024;
    assert_eq!(forecast.headroom_kb, (1 << 20) - used);
    assert!((forecast.seconds - forecast.headroom_kb as f64 / 8192.0).abs() < 1e-6);
    assert_eq!(growth.forecasts().len(), 1);
}

#[test]
fn a_sawtooth_is_not_flagged() {
    let mut growth = Growth::new(0);
    // Up 20 MiB over 10 s, freed, again, six times.
    for t in 1..=60u64 {
        let anon = 50 * 1024 + 2 * 1024 * (t % 10);
        growth.apply(&interval(t, vec![reading(7, anon, 0)], vec![]));
    }
    let row = growth.live_row(7).expect("tracked");
    assert!(!row.steady, "{row:?}");
    assert!(row.r2.expect("a value") < 0.1);
    assert_eq!(
        row.forecast, None,
        "a machine with swap and no memcg limit: no limit to reach"
    );
}

#[test]
fn growth_that_stopped_is_not_steady_any_more() {
    let mut growth = Growth::new(0);
    // 300 s of growth, then 60 s flat: the whole fit still holds, the window is flat.
    for t in 1..=360u64 {
        let anon = 10 * 1024 + 1024 * t.min(300);
        growth.apply(&interval(t, vec![reading(3, anon, 0)], vec![]));
    }
    let row = growth.live_row(3).expect("tracked");
    assert!(row.r2.expect("a value") > 0.9, "{row:?}");
    assert_eq!(row.window_slope_kb_s, Some(0.0));
    assert!(!row.steady);
}

#[test]
fn an_unchanged_process_keeps_its_last_reading() {
    let mut growth = Growth::new(0);
    growth.apply(&interval(1, vec![reading(3, 4096, 0)], vec![]));
    for t in 2..=30 {
        growth.apply(&interval(t, vec![], vec![]));
    }
    let row = growth.live_row(3).expect("tracked");
    assert_eq!(row.readings, 30);
    assert_eq!(row.slope_kb_s, Some(0.0));
    assert!(!row.steady);
    assert!(
        row.series.is_empty(),
        "a process that never moved keeps no series"
    );
    assert_eq!(row.window_slope_kb_s, row.slope_kb_s, "nor a window");
}

#[test]
fn on_a_machine_without_swap_the_limit_is_the_available_memory() {
    let mut growth = Growth::new(0);
    for t in 1..=20u64 {
        let mut sample = interval(t, vec![reading(8, 1024 * t, 0)], vec![]);
        sample.machine.swap_total_kb = 0;
        sample.machine.mem_available_kb = 1024 * 1024;
        growth.apply(&sample);
    }
    let forecast = growth
        .live_row(8)
        .and_then(|r| r.forecast)
        .expect("no swap");
    assert_eq!(forecast.limit, LimitKind::Machine);
    assert_eq!(forecast.headroom_kb, 1024 * 1024);
    assert!((forecast.seconds - 1024.0).abs() < 1e-6);
}

#[test]
fn gone_processes_end_and_only_the_fastest_are_kept() {
    let mut growth = Growth::new(0);
    let pids: Vec<u32> = (1..=(KEEP_ENDED as u32 + 4)).collect();
    for t in 1..=3u64 {
        let readings = pids
            .iter()
            .map(|&p| reading(p, u64::from(p) * 100 * t, 0))
            .collect();
        growth.apply(&interval(t, readings, vec![]));
    }
    let mut sample = interval(4, vec![], vec![]);
    sample.memory.gone = pids
        .iter()
        .map(|&pid| ProcessKey { pid, start_ns: 5 })
        .collect();
    growth.apply(&sample);
    let rows = growth.rows();
    assert_eq!(rows.len(), KEEP_ENDED);
    assert!(rows.iter().all(|r| r.ended && r.forecast.is_none()));
    assert_eq!(rows[0].pid, KEEP_ENDED as u32 + 4, "the fastest first");
    assert!(growth.live_row(1).is_none());
}

#[test]
fn the_series_is_thinned_evenly_and_the_window_slides() {
    let mut growth = Growth::new(0);
    for t in 1..=1000u64 {
        // Flat for 900 s, then 1 MiB a second.
        let anon = 1024 * t.saturating_sub(900);
        growth.apply(&interval(t, vec![reading(5, anon, 0)], vec![]));
    }
    let row = growth.live_row(5).expect("tracked");
    assert!(row.series.len() <= SERIES_POINTS && row.series.len() >= SERIES_POINTS / 2);
    assert!(row.series.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(row.series[0].0, 1.0);
    // The window holds only the last 50-60 readings: all on the slope.
    assert!((row.window_slope_kb_s.expect("a value") - 1024.0).abs() < 1e-6);
    assert!(row.slope_kb_s.expect("a value") < 300.0);
}

#[test]
fn no_reading_no_point() {
    let mut growth = Growth::new(0);
    growth.apply(&IntervalSample::default());
    assert_eq!(growth.readings, 0);
    assert!(growth.rows().is_empty());
}

#[test]
fn each_interval_says_how_much_memory_moved() {
    // The recording starts at 3 ns; pid 3 (started at 5 ns, after it) and pid 4 (started
    // before it) are first read in the first interval.
    let mut growth = Growth::new(3);
    let before = MemoryReading {
        start_ns: 1,
        ..reading(4, 2048, 0)
    };
    let first = growth.apply(&interval(
        1,
        vec![reading(3, 4096, 0), before.clone()],
        vec![],
    ));
    // pid 3 came from nothing; pid 4 was there before the recording: no change to tell.
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!((first[0].pid, first[0].delta_kb), (3, 4096 + 1000));
    assert_eq!(first[0].total_kb, 4096 + 1000);
    // pid 3 grows by 1 MiB, pid 4 is unchanged (not in the readings).
    let second = growth.apply(&interval(2, vec![reading(3, 5120, 0)], vec![]));
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].pid, second[0].delta_kb), (3, 1024));
    assert_eq!(second[0].comm, "leaker");
    // A reading that did not move the total is no change.
    let same = MemoryReading {
        rss_anon_kb: 5120 - 24,
        swap_kb: 24,
        ..reading(3, 0, 0)
    };
    assert!(growth.apply(&interval(3, vec![same], vec![])).is_empty());
    // pid 4 ends: down to 0.
    let mut gone = interval(4, vec![], vec![]);
    gone.memory.gone.push(before.key());
    let last = growth.apply(&gone);
    assert_eq!(last.len(), 1);
    assert_eq!(
        (last[0].pid, last[0].delta_kb, last[0].total_kb),
        (4, -3048, 0)
    );
    // No reading taken: nothing moved that anyone saw.
    let mut unread = interval(5, vec![reading(3, 1 << 20, 0)], vec![]);
    unread.memory.read_ns = 0;
    assert!(growth.apply(&unread).is_empty());
}
