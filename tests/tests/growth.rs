//! Memory growth against workloads with a known rate: the slope and fit of a steady leak, a
//! sawtooth that must not be flagged, and a leak in a memory cgroup whose forecast must match
//! the time it actually took to reach the limit (the OOM kill).
use std::process::Command;

use memtrace::{
    lab::{
        sandbox::{MemcgLimits, Sandbox},
        workload::leak::LeakOutcome,
    },
    report::{Report, growth::ProcessGrowth},
};
use memtrace_tests::{Recorder, Scratch, Workload, memtrace_bin, parse_report, require_root};

const MIB: u64 = 1 << 20;

fn growth_of(report: &Report, pid: u32) -> &ProcessGrowth {
    report
        .growth
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("no growth for pid {pid}: {:#?}", report.growth))
}

/// Leaks `kib_per_s` for `seconds` (sawtooth at `sawtooth_kib` when non-zero) under memtrace.
/// Also returns the leaker's memory moves of the timeline while it lived, KiB per interval.
fn traced_leak(
    kib_per_s: u64,
    seconds: u32,
    sawtooth_kib: u64,
) -> (LeakOutcome, ProcessGrowth, Vec<i64>) {
    let mut leak = Workload::spawn(&[
        "leak",
        "--kib-per-s",
        &kib_per_s.to_string(),
        "--seconds",
        &seconds.to_string(),
        "--sawtooth-kib",
        &sawtooth_kib.to_string(),
    ]);
    let pid = leak.pid;
    let recorder = Recorder::start(&["--pid", &pid.to_string(), "--duration", "120"]);
    leak.go();
    let outcome: LeakOutcome = leak.finish();
    let report = recorder.finish();
    let growth = growth_of(&report, pid).clone();
    let moves: Vec<i64> = report
        .timeline
        .iter()
        .flat_map(|row| &row.memory_moves)
        .filter(|m| m.pid == pid && m.memory_kb > 0)
        .map(|m| m.change_kb)
        .collect();
    eprintln!("workload: {outcome:?}\nmemtrace: {growth:?}\ntimeline moves: {moves:?}");
    (outcome, growth, moves)
}

#[test]
fn a_steady_leak_has_its_slope_and_is_flagged() {
    require_root();
    let (outcome, growth, moves) = traced_leak(8 * 1024, 20, 0);
    let slope = growth.slope_kb_per_s.expect("a slope");
    let error = (slope - outcome.kib_per_s).abs() / outcome.kib_per_s;
    assert!(
        error < 0.10,
        "slope {slope:.0} KiB/s against the workload's {:.0} KiB/s ({:.1} % off)",
        outcome.kib_per_s,
        error * 100.0
    );
    assert!(growth.r2.expect("a fit") > 0.95, "{growth:?}");
    assert!(growth.steady_growth, "a steady leak is flagged: {growth:?}");
    assert!(growth.readings >= 15, "one reading a second: {growth:?}");
    // The memory it holds: what it leaked and what it had before (its binary, its stack).
    let leaked_kb = outcome.held_kib;
    assert!(
        growth.rss_anon_kb >= leaked_kb * 95 / 100,
        "anon {} KiB holds the {leaked_kb} KiB leaked",
        growth.rss_anon_kb
    );
    // The timeline says, interval by interval, what the leak added: the workload's rate over
    // one interval (1 s), and the whole leak less what it leaked before the first reading
    // (which has nothing to compare with) and after the last (it exits within an interval).
    let mut steady: Vec<i64> = moves.iter().copied().filter(|&kb| kb > 0).collect();
    steady.sort_unstable();
    assert!(
        steady.len() >= 15,
        "a move in each interval of the leak: {moves:?}"
    );
    let median = steady[steady.len() / 2] as f64;
    assert!(
        (median - outcome.kib_per_s).abs() / outcome.kib_per_s < 0.10,
        "median move {median} KiB a 1 s interval against the workload's {:.0} KiB/s",
        outcome.kib_per_s
    );
    let moved: i64 = moves.iter().sum();
    let leaked = leaked_kb as i64;
    let outside_readings = 3 * outcome.kib_per_s as i64;
    assert!(
        moved <= leaked + leaked / 20 && moved >= leaked - outside_readings - leaked / 20,
        "the moves add up to {moved} KiB; the workload leaked {leaked} KiB"
    );
}

#[test]
fn a_sawtooth_is_not_flagged() {
    require_root();
    // 8 MiB a second, all freed at 32 MiB: five cycles of four seconds.
    let (outcome, growth, _) = traced_leak(8 * 1024, 20, 32 * 1024);
    assert!(outcome.pages_freed > 0, "the workload freed: {outcome:?}");
    assert!(
        !growth.steady_growth,
        "a sawtooth is not a leak: {growth:?}"
    );
    assert!(growth.r2.unwrap_or(0.0) < 0.5, "{growth:?}");
    let low_mib = growth.series.iter().map(|p| p.1).fold(f32::MAX, f32::min);
    assert!(
        growth.peak_kb as f32 / 1024.0 - low_mib >= 20.0,
        "the readings saw the teeth: {growth:?}"
    );
}

#[test]
fn the_memcg_forecast_matches_the_time_to_the_kill() {
    require_root();
    let sandbox = Sandbox::create(
        &MemcgLimits {
            memory_bytes: 512 * MIB,
            swap_bytes: Some(0),
        },
        None,
    )
    .expect("sandbox");
    let scratch = Scratch::new("growth-forecast");
    let recording = scratch.file("leak.mtr");
    // 16 MiB a second into a 512 MiB limit: killed after about 32 s.
    let mut leak = Workload::spawn(&["leak", "--kib-per-s", "16384"]);
    sandbox.memcg.add_pid(leak.pid).expect("into the memcg");
    let pid = leak.pid;
    let recorder = Recorder::start(&[
        "--pid",
        &pid.to_string(),
        "--duration",
        "120",
        "-o",
        recording.to_str().expect("utf-8"),
    ]);
    leak.go();
    let report = recorder.finish();
    drop(leak);
    let kill = report
        .oom_kills
        .iter()
        .find(|k| k.victim.pid == pid)
        .unwrap_or_else(|| panic!("the leak was OOM-killed: {:#?}", report.oom_kills));
    let full = growth_of(&report, pid);
    assert!(full.steady_growth, "{full:?}");
    assert_eq!(full.memcg_limit_kb, Some(512 * 1024), "{full:?}");
    assert_eq!(
        full.memcg_path.as_deref(),
        sandbox.memcg.path().to_str(),
        "{full:?}"
    );
    // What memtrace said at 12 s and at 20 s, against what happened.
    for at in [12, 20] {
        let window = scratch.file(&format!("to-{at}.json"));
        let output = Command::new(memtrace_bin())
            .args(["report", "--to", &format!("{at}s"), "--json"])
            .arg(&window)
            .arg(&recording)
            .output()
            .expect("memtrace report");
        assert!(output.status.success(), "{output:?}");
        let early = parse_report(&std::fs::read_to_string(&window).expect("the JSON"));
        let growth = growth_of(&early, pid);
        let forecast = growth
            .forecast
            .as_ref()
            .unwrap_or_else(|| panic!("a forecast at {at}s: {growth:?}"));
        assert_eq!(forecast.limit, "memcg");
        let read_at_s = f64::from(growth.series.last().expect("a series").0);
        let actual = kill.at_s - read_at_s;
        let error = (forecast.seconds - actual).abs() / actual;
        eprintln!(
            "at {read_at_s:.1}s: forecast {:.1}s, killed {actual:.1}s later ({:.1} % off)",
            forecast.seconds,
            error * 100.0
        );
        assert!(
            error < 0.15,
            "forecast {:.1}s at {read_at_s:.1}s; the kill came {actual:.1}s later",
            forecast.seconds
        );
    }
}

/// `record --stacks` on the leak: the folded stacks put at least 90 % of its pages under the
/// function that takes them (`leak_pages`, built with frame pointers like all of memtrace), the
/// pages add up to what the workload touched, and the flame graph is an SVG naming it.
#[test]
fn the_flame_graph_puts_the_leak_under_its_function() {
    require_root();
    let scratch = Scratch::new("growth-stacks");
    let recording = scratch.file("stacks.mtr");
    let mut leak = Workload::spawn(&["leak", "--kib-per-s", "8192", "--seconds", "6"]);
    let pid = leak.pid;
    let recorder = Recorder::start(&[
        "--pid",
        &pid.to_string(),
        "--stacks",
        "-o",
        recording.to_str().expect("utf-8"),
    ]);
    leak.go();
    let outcome: LeakOutcome = leak.finish();
    let report = recorder.finish();
    assert!(report.stacks.enabled, "{:?}", report.stacks);
    let folded = scratch.file("stacks.folded");
    let svg = scratch.file("stacks.svg");
    let output = Command::new(memtrace_bin())
        .arg("report")
        .arg(&recording)
        .arg("--folded")
        .arg(&folded)
        .arg("--flamegraph")
        .arg(&svg)
        .output()
        .expect("memtrace report");
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&folded).expect("the folded stacks");
    let mut all = 0u64;
    let mut under = 0u64;
    for line in text.lines() {
        let (stack, pages) = line.rsplit_once(' ').expect("`stack pages`");
        let pages: u64 = pages.parse().expect("a page count");
        let frames: Vec<&str> = stack.split(';').collect();
        assert!(frames.len() >= 2, "comm and frames: {line}");
        all += pages;
        if frames.iter().any(|f| f.ends_with("::leak_pages")) {
            under += pages;
        }
    }
    eprintln!(
        "{under} of {all} pages under leak_pages; the workload touched {}",
        outcome.pages_taken
    );
    assert!(
        under * 10 >= all * 9,
        "{under} of {all} pages under leak_pages:\n{text}"
    );
    let touched = outcome.pages_taken;
    assert!(
        under.abs_diff(touched) * 20 <= touched,
        "{under} pages counted under leak_pages, {touched} touched"
    );
    assert_eq!(
        report.stacks.pages, all,
        "the summary and the folded lines agree"
    );
    assert!(
        report.stacks.top_functions[0]
            .function
            .ends_with("::leak_pages")
    );
    let svg = std::fs::read_to_string(&svg).expect("the SVG");
    assert!(
        svg.starts_with("<?xml")
            && svg.contains("leak_pages")
            && svg.trim_end().ends_with("</svg>")
    );
}

#[test]
fn a_flame_graph_of_a_recording_without_stacks_is_refused() {
    require_root();
    let scratch = Scratch::new("growth-nostacks");
    let recording = scratch.file("plain.mtr");
    let mut leak = Workload::spawn(&["leak", "--kib-per-s", "1024", "--seconds", "1"]);
    let recorder = Recorder::start(&[
        "--pid",
        &leak.pid.to_string(),
        "-o",
        recording.to_str().expect("utf-8"),
    ]);
    leak.go();
    let _: LeakOutcome = leak.finish();
    let _ = recorder.finish();
    let svg = scratch.file("none.svg");
    let output = Command::new(memtrace_bin())
        .arg("report")
        .arg(&recording)
        .arg("--flamegraph")
        .arg(&svg)
        .output()
        .expect("memtrace report");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("record with --stacks"), "{stderr}");
    assert!(!svg.exists(), "nothing written");
}
