//! Recordings written and read back, cut short and damaged: every complete interval is read,
//! the stop is named with its offset, and nothing panics.
use std::path::{Path, PathBuf};

use memtrace_common::FaultClass;

use super::{Frame, ReadProblem, Reader, read_model};
use crate::{
    collect::session::SampleSink,
    model::Model,
    recording::Writer,
    report::{Report, View, json},
    samples::{
        ClassSample, End, Header, IntervalSample, KernelCounters, LatencyStats, ProcessSample,
        StopReason, machine::MachineSample,
    },
};

const S: u64 = 1_000_000_000;

/// A file in the temp dir, removed on drop (also when a test fails).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "memtrace-recording-{}-{name}.mtr",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn header() -> Header {
    Header {
        memtrace_version: "test".into(),
        start_mono_ns: 0,
        interval_ns: S,
        traced: "all processes".into(),
        ..Header::default()
    }
}

fn interval(index: u64) -> IntervalSample {
    let mut latency = LatencyStats::new();
    for i in 0..(200 * (index + 1)) {
        latency.record(1000 + i * 37);
    }
    IntervalSample {
        index,
        start_ns: index * S,
        end_ns: (index + 1) * S,
        machine: MachineSample {
            mono_ns: (index + 1) * S,
            mem_free_kb: 1 << 20,
            ..MachineSample::default()
        },
        processes: vec![ProcessSample {
            pid: 40 + index as u32,
            comm: format!("proc{index}"),
            named: true,
            faults: vec![ClassSample {
                class: FaultClass::Minor as u32,
                latency,
                ..ClassSample::default()
            }],
            ..ProcessSample::default()
        }],
        fault_records: 200 * (index + 1),
        ..IntervalSample::default()
    }
}

const INTERVALS: u64 = 6;

fn end() -> End {
    End {
        stop: StopReason::Duration,
        elapsed_ns: INTERVALS * S,
        counters: KernelCounters::default(),
    }
}

/// Writes a whole recording; returns the file and the model the live run would have.
fn write_recording(name: &str) -> (TempFile, Model) {
    let file = TempFile::new(name);
    let mut writer = Writer::create(&file.0).expect("create");
    let mut live = Model::new(header());
    writer.header(&header());
    for index in 0..INTERVALS {
        let sample = interval(index);
        writer.interval(&sample);
        live.apply(&sample);
    }
    writer.end(&end());
    live.finish(&end());
    assert_eq!(writer.failure(), None);
    assert_eq!(writer.intervals(), INTERVALS);
    (file, live)
}

fn report_json(model: &Model) -> String {
    let mut out = Vec::new();
    json::write(&Report::new(model, &View::default()), &mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn a_recording_replays_to_the_live_runs_report() {
    let (file, live) = write_recording("replay");
    let mut reader = Reader::open(&file.0).expect("open");
    assert_eq!(reader.header, header());
    let mut intervals = Vec::new();
    while let Some(frame) = reader.next_frame() {
        match frame {
            Frame::Interval(sample) => intervals.push(*sample),
            Frame::End(e) => assert_eq!(e, end()),
        }
    }
    assert_eq!(reader.problem(), None);
    assert_eq!(intervals, (0..INTERVALS).map(interval).collect::<Vec<_>>());
    let (replayed, read, problem) = read_model(&file.0, |_| true, None).expect("read");
    assert_eq!((read, problem), (INTERVALS, None));
    assert_eq!(report_json(&replayed), report_json(&live));
}

#[test]
fn a_window_keeps_the_intervals_that_start_inside_it() {
    let (file, _) = write_recording("window");
    let (model, read, _) =
        read_model(&file.0, |start| (2 * S..4 * S).contains(&start), None).expect("read");
    assert_eq!(read, INTERVALS);
    let pids: Vec<u32> = Report::new(&model, &View::default())
        .processes
        .iter()
        .map(|p| p.pid)
        .collect();
    assert_eq!(pids, vec![43, 42], "busiest first, only intervals 2 and 3");
    assert_eq!(model.elapsed_ns(), 2 * S);
}

/// xorshift: a fixed sequence, so a failure reproduces.
fn random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn a_file_cut_anywhere_gives_every_complete_interval_and_says_where_it_ends() {
    let (file, _) = write_recording("cut");
    let bytes = std::fs::read(&file.0).expect("read");
    let cut = TempFile::new("cut-copy");
    let mut state = 0x2545_f491_4f6c_dd1d;
    let mut offsets: Vec<usize> = (0..20)
        .map(|_| (random(&mut state) % bytes.len() as u64) as usize)
        .collect();
    offsets.extend([0, 7, 16, 17, bytes.len() - 1]);
    for len in offsets {
        std::fs::write(&cut.0, &bytes[..len]).expect("write");
        let Ok(mut reader) = Reader::open(&cut.0) else {
            // Only a cut inside the file's start or its header frame may refuse the file.
            let header_end = first_frame_end(&bytes);
            assert!(len < header_end, "cut at {len} refused the file");
            continue;
        };
        let mut read = 0u64;
        while let Some(frame) = reader.next_frame() {
            if let Frame::Interval(sample) = frame {
                assert_eq!(*sample, interval(read), "intervals come back intact");
                read += 1;
            }
        }
        match reader.problem() {
            Some(ReadProblem::Truncated { offset } | ReadProblem::NoEnd { offset }) => {
                assert!(
                    *offset as usize <= len,
                    "cut at {len}, stop named at {offset}"
                );
                assert!(read < INTERVALS || len < bytes.len());
            }
            other => panic!("cut at {len}: {other:?}"),
        }
    }
}

/// Where the header frame ends.
fn first_frame_end(bytes: &[u8]) -> usize {
    let len = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
    16 + 8 + len
}

#[test]
fn flipped_bytes_are_reported_with_their_offset_never_a_panic() {
    let (file, _) = write_recording("flip");
    let bytes = std::fs::read(&file.0).expect("read");
    let damaged = TempFile::new("flip-copy");
    let mut state = 0x9e37_79b9_7f4a_7c15;
    let header_end = first_frame_end(&bytes);
    for _ in 0..200 {
        let mut copy = bytes.clone();
        let at = (random(&mut state) % copy.len() as u64) as usize;
        copy[at] ^= 1 << (random(&mut state) % 8);
        std::fs::write(&damaged.0, &copy).expect("write");
        let Ok(mut reader) = Reader::open(&damaged.0) else {
            assert!(
                at < header_end,
                "a flip at {at}, past the header, refused the file"
            );
            continue;
        };
        let mut read = 0u64;
        while let Some(frame) = reader.next_frame() {
            if let Frame::Interval(sample) = frame {
                assert_eq!(*sample, interval(read), "no damaged interval is passed on");
                read += 1;
            }
        }
        match reader.problem() {
            Some(ReadProblem::Damaged { offset, .. } | ReadProblem::Truncated { offset }) => {
                assert!(
                    (*offset as usize) <= at,
                    "flip at {at}, reported at {offset}"
                );
            }
            // A flip in a length can make the rest look like a clean end of file.
            Some(ReadProblem::NoEnd { offset }) => assert!((*offset as usize) <= at),
            None => panic!("a flip at {at} went unnoticed"),
        }
    }
}

#[test]
fn foreign_empty_and_newer_files_are_refused_with_a_reason() {
    let file = TempFile::new("foreign");
    let refused = |bytes: &[u8]| -> String {
        std::fs::write(&file.0, bytes).expect("write");
        match Reader::open(&file.0) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{bytes:?} was accepted"),
        }
    };
    assert!(refused(b"").contains("empty"));
    assert!(refused(b"#!/bin/sh\necho hello\n").contains("not a memtrace recording"));
    let mut newer = super::super::frame::file_header().to_vec();
    newer[8] = 99;
    assert!(refused(&newer).contains("upgrade memtrace"));
    assert!(refused(&super::super::frame::file_header()).contains("no header"));
    let missing = Path::new("/nonexistent/memtrace.mtr");
    assert!(Reader::open(missing).is_err());
}

/// A recording made by memtrace 0.1.0 on a real kernel (the demo's swap storm): every later
/// memtrace must read it and render the report it rendered then. If the report's JSON changes
/// on purpose, regenerate the expected file with
/// `memtrace report memtrace/tests/fixtures/demo-v1.mtr --json memtrace/tests/fixtures/demo-v1.json`.
#[test]
fn the_first_format_stays_readable() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["demo-v1", "oom-v1"] {
        let (model, intervals, problem) =
            read_model(&fixtures.join(format!("{name}.mtr")), |_| true, None).expect("read");
        assert_eq!(problem, None, "{name}");
        assert!(intervals > 0, "{name}");
        let expected =
            std::fs::read_to_string(fixtures.join(format!("{name}.json"))).expect("expected json");
        assert_eq!(report_json(&model), expected, "{name}");
    }
}
