//! The interval log read back by two independent readers, the hdrhistogram crate's parser and
//! Python's `hdrh`: per tag, the counts add up to the report's totals for that process and class
//! or kind, built as `memtrace report` builds it.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use base64::Engine as _;
use hdrhistogram::{
    Histogram,
    serialization::{
        Deserializer,
        interval_log::{IntervalLogIterator, LogEntry},
    },
};

use super::*;
use crate::{
    recording::{Reader, read_model},
    report::{Report, View, fixture},
};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-v1.mtr")
}

/// The log of a recording file, made as `memtrace report --hlog` makes it: a pass for the
/// names, a pass for the log.
fn render_file(path: &Path, selection: &Selection) -> (Header, Vec<u8>) {
    let mut reader = Reader::open(path).expect("the fixture opens");
    let header = reader.header.clone();
    let names = Names::of(&header, reader.intervals(), selection);
    assert_eq!(reader.problem(), None, "the fixture is whole");
    let mut reader = Reader::open(path).expect("the fixture opens");
    let mut out = Vec::new();
    write(&header, &names, reader.intervals(), selection, &mut out).expect("writes to a Vec");
    (header, out)
}

/// The report `memtrace report FILE [--pid ..] [--from ..] [--to ..]` renders.
fn report_of(path: &Path, selection: &Selection) -> Report {
    let focus = selection.pids.as_deref();
    let window = selection.window_ns.clone();
    let (model, _, problem) =
        read_model(path, |start| window.contains(&start), focus).expect("the fixture reads");
    assert_eq!(problem, None);
    Report::new(
        &model,
        &View {
            pids: selection.pids.clone(),
        },
    )
}

/// What a reader found under one tag.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    entries: u64,
    count: u64,
    max_ns: u64,
}

/// Per tag, the report's figures: (pid, comm, class or kind) → totals, with the process's start
/// in seconds from the start of the recording.
fn report_totals(report: &Report) -> BTreeMap<(u32, String, &'static str), (u64, u64)> {
    let mut totals = BTreeMap::new();
    for p in &report.processes {
        let comm = tag(0, 0, &p.comm, "x")
            .split('.')
            .nth(2)
            .map(str::to_string);
        let comm = comm.expect("a tag has four fields");
        for (class, stats) in p.classes.iter() {
            let s = &stats.latency;
            if s.count > 0 {
                totals.insert((p.pid, comm.clone(), class.name()), (s.count, s.max_ns));
            }
        }
        for (kind, stats) in p.stalls.iter() {
            let s = &stats.latency;
            if s.count > 0 {
                totals.insert((p.pid, comm.clone(), kind.name()), (s.count, s.max_ns));
            }
        }
    }
    totals
}

/// Reads the log with the crate's parser: the start and base times, and per tag the totals.
fn parse(log: &[u8]) -> (Vec<LogEntry<'_>>, BTreeMap<String, Totals>) {
    let mut meta = Vec::new();
    let mut tags: BTreeMap<String, Totals> = BTreeMap::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(log) {
        let entry = entry.expect("the crate parses every line");
        let LogEntry::Interval(interval) = &entry else {
            meta.push(entry);
            continue;
        };
        let tag = interval.tag().expect("every entry is tagged").to_string();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .expect("base64");
        let hist: Histogram<u64> = deserializer
            .deserialize(&mut bytes.as_slice())
            .expect("a V2 deflate histogram");
        assert!(!hist.is_empty(), "{tag}: empty histograms are not written");
        // Interval_Max: ms with 3 decimals, as the Java writer puts it.
        let max_ms = hist.max() as f64 / 1e6;
        assert!(
            (interval.max() - max_ms).abs() <= 0.0005 + 1e-9,
            "{tag}: max {max_ms} ms"
        );
        let totals = tags.entry(tag).or_default();
        totals.entries += 1;
        totals.count += hist.len();
        totals.max_ns = totals.max_ns.max(hist.max());
    }
    (meta, tags)
}

/// Checks the log's totals against the report's: the same (process, class or kind) pairs, the
/// same counts and maxima, and tags that name the right process.
fn check_against_report(
    tags: &BTreeMap<String, (u64, u64)>,
    report: &Report,
    header: &Header,
) -> usize {
    let expected = report_totals(report);
    assert_eq!(tags.len(), expected.len(), "{tags:?}\n{expected:?}");
    for (tag, &(count, max_ns)) in tags {
        let fields: Vec<&str> = tag.split('.').collect();
        let [pid, start, comm, name] = fields[..] else {
            panic!("{tag}: not four fields");
        };
        let pid: u32 = pid.parse().expect("pid");
        let start: u64 = start.parse().expect("start");
        let key = (pid, comm.to_string(), name);
        assert_eq!(expected.get(&key), Some(&(count, max_ns)), "{tag}");
        let process = report.processes.iter().find(|p| p.pid == pid);
        let start_s = process.expect("a process of the report").start_s;
        let tag_start_s = (start > 0).then(|| (start as f64 - header.start_mono_ns as f64) / 1e9);
        assert_eq!(start_s, tag_start_s, "{tag}");
    }
    tags.len()
}

fn counts(tags: &BTreeMap<String, Totals>) -> BTreeMap<String, (u64, u64)> {
    tags.iter()
        .map(|(tag, t)| (tag.clone(), (t.count, t.max_ns)))
        .collect()
}

#[test]
fn the_demo_log_adds_up_to_the_report_per_process_and_class() {
    let selection = Selection::default();
    let (header, log) = render_file(&demo(), &selection);
    let text = String::from_utf8(log.clone()).expect("the log is text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#[Logged with memtrace 0.1.0]");
    assert_eq!(lines[1], "#[Histogram log format version 1.3]");
    assert!(lines[3].starts_with("#[StartTime: "), "{}", lines[3]);
    assert!(lines[4].starts_with("#[BaseTime: "), "{}", lines[4]);
    assert_eq!(lines[5], LEGEND);
    let (meta, tags) = parse(&log);
    let start = Duration::from_nanos(header.start_unix_ns);
    for entry in &meta {
        let (LogEntry::StartTime(at) | LogEntry::BaseTime(at)) = entry else {
            panic!("{entry:?}");
        };
        assert!(at.abs_diff(start) < Duration::from_millis(1), "{at:?}");
    }
    assert_eq!(meta.len(), 2);

    let report = report_of(&demo(), &selection);
    let kinds: Vec<&str> = tags
        .keys()
        .map(|t| t.rsplit('.').next().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["major_file", "memcg_reclaim", "minor", "swap_in"]);
    assert_eq!(check_against_report(&counts(&tags), &report, &header), 4);
    // One entry per interval the process was busy in, no more.
    let intervals = report.timeline.len() as u64;
    assert!(tags.values().all(|t| (1..=intervals).contains(&t.entries)));
}

#[test]
fn timestamps_count_from_the_start_of_the_recording() {
    let (_, log) = render_file(&demo(), &Selection::default());
    let report = report_of(&demo(), &Selection::default());
    let mut first = Duration::MAX;
    for entry in IntervalLogIterator::new(&log) {
        if let Ok(LogEntry::Interval(interval)) = entry {
            first = first.min(interval.start_timestamp());
            let end = interval.start_timestamp() + interval.duration();
            assert!(end.as_secs_f64() <= report.duration_s + 0.002, "{end:?}");
        }
    }
    assert!(first < Duration::from_secs(2), "{first:?}");
}

#[test]
fn pid_and_window_select_like_the_report() {
    let path = demo();
    let pid = report_of(&path, &Selection::default()).processes[0].pid;
    let selection = Selection {
        pids: Some(vec![pid]),
        window_ns: 2_000_000_000..5_000_000_000,
    };
    let (header, log) = render_file(&path, &selection);
    let (_, tags) = parse(&log);
    let report = report_of(&path, &selection);
    assert!(check_against_report(&counts(&tags), &report, &header) > 0);
    for entry in IntervalLogIterator::new(&log) {
        if let Ok(LogEntry::Interval(interval)) = entry {
            let at = interval.start_timestamp().as_secs_f64();
            assert!((2.0..5.0).contains(&at), "{at}");
        }
    }
    let nobody = Selection {
        pids: Some(vec![1]),
        ..Selection::default()
    };
    let (_, log) = render_file(&path, &nobody);
    assert!(parse(&log).1.is_empty());
}

#[test]
fn the_fixture_s_processes_and_stalls_each_get_a_tag() {
    let header = fixture::header();
    let intervals = fixture::intervals();
    let all = Selection::default();
    let names = Names::of(&header, &intervals, &all);
    let log = fixture::render(|out| write(&header, &names, &intervals, &all, out));
    let (_, tags) = parse(log.as_bytes());
    let report = Report::new(&fixture::model_of(&intervals, None), &View::default());
    assert_eq!(check_against_report(&counts(&tags), &report, &header), 8);
    let only_redis = Selection {
        pids: Some(vec![200]),
        window_ns: 0..1_000_000_000,
    };
    let log = fixture::render(|out| write(&header, &names, &intervals, &only_redis, out));
    let tags: Vec<String> = parse(log.as_bytes()).1.into_keys().collect();
    assert_eq!(tags, ["200.0.redis.compaction", "200.0.redis.minor"]);
}

#[test]
fn a_process_keeps_one_tag_whatever_it_was_called_first() {
    let header = fixture::header();
    let mut intervals = fixture::intervals();
    // pid 100 faults first under a thread's name, then execs: its tag is the last name.
    intervals[0].processes[0].comm = "worker".into();
    intervals[0].processes[0].named = false;
    intervals[1].processes[0].comm = "pg.v16, main".into();
    let all = Selection::default();
    let names = Names::of(&header, &intervals, &all);
    let log = fixture::render(|out| write(&header, &names, &intervals, &all, out));
    let tags: Vec<String> = parse(log.as_bytes()).1.into_keys().collect();
    assert!(
        tags.contains(&"100.0.pg_v16__main.minor".to_string()),
        "{tags:?}"
    );
    assert!(!tags.iter().any(|t| t.contains("worker")), "{tags:?}");
}

#[test]
fn tags_are_four_dot_separated_fields_without_commas_or_spaces() {
    assert_eq!(
        tag(42, 7, "a b,c.d\tx\u{e9}", "minor"),
        "42.7.a_b_c_d_x_.minor"
    );
    assert_eq!(tag(1, 0, "", "swap_in"), "1.0.?.swap_in");
    assert_eq!(
        tag(1, 0, "kworker/0:1-mm", "compaction"),
        "1.0.kworker/0:1-mm.compaction"
    );
}

/// Python's `hdrh` reads the same log to the same totals. `cargo xtask test` (and
/// `cargo xtask setup`) installs it; without python3 or hdrh this fails, it does not skip.
#[test]
fn python_hdrh_reads_the_same_totals() {
    let (header, log) = render_file(&demo(), &Selection::default());
    let file = std::env::temp_dir().join(format!("memtrace-hlog-{}.hlog", std::process::id()));
    std::fs::write(&file, &log).expect("write the log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hlog_totals.py");
    let output = Command::new("python3").arg(&script).arg(&file).output();
    let _ = std::fs::remove_file(&file);
    let output = output.unwrap_or_else(|e| {
        panic!("python3 cannot run ({e}): install it and `python3 -m pip install hdrhistogram`")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script:?} failed ({}); is Python's hdrh installed (`cargo xtask setup`)?\n{stderr}",
        output.status
    );
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let start_s = found["start_time_sec"].as_f64().expect("start_time_sec");
    assert!(
        (start_s - header.start_unix_ns as f64 / 1e9).abs() < 0.001,
        "{start_s}"
    );
    let python: BTreeMap<String, Totals> = found["tags"]
        .as_object()
        .expect("tags")
        .iter()
        .map(|(tag, t)| {
            let n = |key: &str| t[key].as_u64().expect("a count");
            let totals = Totals {
                entries: n("entries"),
                count: n("count"),
                max_ns: n("max_ns"),
            };
            (tag.clone(), totals)
        })
        .collect();
    assert_eq!(python, parse(&log).1, "Python and Rust read the same log");
    let report = report_of(&demo(), &Selection::default());
    assert_eq!(check_against_report(&counts(&python), &report, &header), 4);
}
