//! A rotating recording written and read back file by file: each file is a recording of its
//! own (its clocks, its counters, its cgroup names), and only `keep` old files stay.
use std::path::{Path, PathBuf};

use memtrace_common::EventKind;

use super::{RotatingWriter, Rotation, numbered};
use crate::{
    collect::session::SampleSink,
    recording::read_model,
    samples::{
        CgroupName, End, Header, IntervalSample, KernelCounters, ProcessSample, StopReason,
        machine::MachineSample,
    },
};

const S: u64 = 1_000_000_000;
const START: u64 = 100 * S;

/// A directory in the temp dir, removed with its files on drop (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("memtrace-rotate-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn header() -> Header {
    Header {
        memtrace_version: "test".into(),
        start_mono_ns: START,
        start_unix_ns: 1_000 * S,
        interval_ns: S,
        traced: "all processes".into(),
        ..Header::default()
    }
}

/// `index` lost fault records so far.
fn counters(index: u64) -> KernelCounters {
    let mut counters = KernelCounters::default();
    counters.lost[EventKind::Fault as usize] = index * (index + 1) / 2;
    counters
}

/// One interval of a process in memcg 501, which is named in interval 0 only (as the
/// builder names a cgroup once).
fn interval(index: u64) -> IntervalSample {
    IntervalSample {
        index,
        start_ns: START + index * S,
        end_ns: START + (index + 1) * S,
        machine: MachineSample {
            mono_ns: START + (index + 1) * S,
            mem_free_kb: 1000 + index,
            ..MachineSample::default()
        },
        processes: vec![ProcessSample {
            pid: 40,
            comm: "app".into(),
            named: true,
            memcg_id: 501,
            ..ProcessSample::default()
        }],
        cgroups: if index == 0 {
            vec![CgroupName {
                id: 501,
                path: Some("/app.slice".into()),
                memory_limit_bytes: None,
            }]
        } else {
            Vec::new()
        },
        counters: counters(index),
        ..IntervalSample::default()
    }
}

/// Writes `intervals` intervals and the end through a writer rotating every `age` seconds.
fn run(path: &Path, intervals: u64, age: u64, keep: u32) -> RotatingWriter {
    let rotation = Rotation {
        max_bytes: 0,
        max_age_ns: age * S,
        keep,
    };
    let mut writer = RotatingWriter::create(path, rotation).expect("create");
    writer.header(&header());
    for index in 0..intervals {
        writer.interval(&interval(index));
    }
    writer.end(&End {
        stop: StopReason::Interrupted,
        elapsed_ns: intervals * S,
        counters: counters(intervals - 1),
    });
    assert_eq!(writer.failure(), None);
    writer
}

#[test]
fn each_file_is_a_recording_of_its_own() {
    let dir = TempDir::new("own");
    let path = dir.0.join("serve.mtr");
    let writer = run(&path, 7, 2, 2);
    // Rotated after intervals 1, 3 and 5: the oldest file (0-1) is gone.
    assert_eq!(writer.rotated(), 3);
    assert!(!numbered(&path, 3).exists());
    let read = |p: &Path| read_model(p, |_| true, None).expect("readable").0;

    let oldest = read(&numbered(&path, 2));
    assert_eq!(oldest.stop_reason(), StopReason::Rotated);
    assert_eq!(oldest.header.start_mono_ns, START + 2 * S);
    assert_eq!(oldest.header.start_unix_ns, 1_002 * S);
    assert_eq!(
        oldest.header.machine.mem_free_kb, 1001,
        "the machine at its start"
    );
    assert_eq!(oldest.elapsed_ns(), 2 * S);
    // Lost records of intervals 2 and 3 only: 6 - 1.
    assert_eq!(oldest.counters.lost[EventKind::Fault as usize], 5);
    assert_eq!(
        oldest.cgroups.get(&501).and_then(|c| c.path.as_deref()),
        Some("/app.slice"),
        "named again in a file that starts after the cgroup was first named"
    );

    let middle = read(&numbered(&path, 1));
    assert_eq!(middle.header.start_mono_ns, START + 4 * S);
    assert_eq!(middle.counters.lost[EventKind::Fault as usize], 15 - 6);

    let current = read(&path);
    assert_eq!(current.stop_reason(), StopReason::Interrupted);
    assert_eq!(current.header.start_mono_ns, START + 6 * S);
    assert_eq!(current.elapsed_ns(), S);
    assert_eq!(current.counters.lost[EventKind::Fault as usize], 21 - 15);
    assert!(current.cgroups.contains_key(&501));
}

#[test]
fn without_rotation_it_is_one_plain_recording() {
    let dir = TempDir::new("plain");
    let path = dir.0.join("serve.mtr");
    let writer = run(&path, 5, 0, 3);
    assert_eq!(writer.rotated(), 0);
    assert!(!numbered(&path, 1).exists());
    let (model, intervals, problem) = read_model(&path, |_| true, None).expect("readable");
    assert_eq!((intervals, problem), (5, None));
    assert_eq!(model.stop_reason(), StopReason::Interrupted);
    assert_eq!(model.counters, counters(4));
    assert_eq!(model.elapsed_ns(), 5 * S);
}

#[test]
fn keeping_none_removes_each_ended_file() {
    let dir = TempDir::new("none");
    let path = dir.0.join("serve.mtr");
    let writer = run(&path, 4, 1, 0);
    assert_eq!(writer.rotated(), 4);
    assert!(!numbered(&path, 1).exists());
    let (model, intervals, _) = read_model(&path, |_| true, None).expect("readable");
    assert_eq!(intervals, 0, "the last rotation left an empty file");
    assert_eq!(model.stop_reason(), StopReason::Interrupted);
}

#[test]
fn rotation_is_due_by_size_or_age() {
    let both = Rotation {
        max_bytes: 100,
        max_age_ns: 10,
        keep: 1,
    };
    assert!(!both.due(99, 9));
    assert!(both.due(100, 0));
    assert!(both.due(0, 10));
    let never = Rotation {
        max_bytes: 0,
        max_age_ns: 0,
        keep: 1,
    };
    assert!(!never.due(u64::MAX, u64::MAX));
}
