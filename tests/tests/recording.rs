//! Recordings against the real kernel: a run recorded with `-o` replays to the same report, a
//! recorder killed with SIGKILL leaves every complete interval readable, and bad files or
//! paths are refused with one line and status 2 before anything is traced.
use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use memtrace::{
    lab::{
        sandbox::{MemcgLimits, Sandbox},
        workload::faults::FaultOutcome,
    },
    report::Report,
    samples::StopReason,
};
use memtrace_tests::{
    Scratch, Workload, machine_state, memtrace_bin, parse_report, require_root, run_memtrace,
};

const MIB: u64 = 1 << 20;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn read_report(path: &Path) -> (String, Report) {
    let text = std::fs::read_to_string(path).expect("read the JSON");
    let report = parse_report(&text);
    (text, report)
}

/// The demo's workload (cold file reads, fresh memory, a swap storm in a 64 MiB memcg),
/// recorded with `-o` and `--json`: `memtrace report` of the file gives the same JSON, byte
/// for byte, and the same text.
#[test]
fn a_recording_replays_to_the_live_report() {
    require_root();
    let scratch = Scratch::new("rec-replay");
    let limits = MemcgLimits {
        memory_bytes: 64 * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(512 * MIB)).expect("sandbox");
    let mut workload = Workload::spawn(&[
        "faults",
        "--file-mib",
        "32",
        "--anon-mib",
        "64",
        "--swap-mib",
        "160",
        "--pause-ms",
        "500",
    ]);
    sandbox.memcg.add_pid(workload.pid).expect("into the memcg");
    let (recording, live_json) = (scratch.file("run.mtr"), scratch.file("live.json"));
    let pid = workload.pid.to_string();
    let recorder = Command::new(memtrace_bin())
        .args(["record", "--quiet", "--interval", "200ms", "--pid", &pid])
        .arg("-o")
        .arg(&recording)
        .arg("--json")
        .arg(&live_json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the recorder");
    memtrace_tests::wait_for_recording_header(&recording);
    workload.go();
    let outcome: FaultOutcome = workload.finish();
    let recorded = recorder.wait_with_output().expect("recorder");
    assert!(recorded.status.success(), "{}", stderr_of(&recorded));
    drop(sandbox);

    let replay_json = scratch.file("replay.json");
    let replayed = Command::new(memtrace_bin())
        .arg("report")
        .arg(&recording)
        .arg("--json")
        .arg(&replay_json)
        .output()
        .expect("memtrace report");
    assert!(replayed.status.success(), "{}", stderr_of(&replayed));
    let (live_text, live) = read_report(&live_json);
    let (replay_text, _) = read_report(&replay_json);
    assert_eq!(
        replay_text, live_text,
        "the replayed JSON is the live run's"
    );
    assert_eq!(
        String::from_utf8_lossy(&replayed.stdout),
        String::from_utf8_lossy(&recorded.stdout),
        "the replayed text report is the live run's"
    );
    // The recording holds the real run, not an empty one: the workload's faults and the
    // storm's intervals are in it.
    assert_eq!(live.stop_reason, StopReason::TracedExited);
    let process = live
        .processes
        .iter()
        .find(|p| p.pid == outcome.pid)
        .expect("the workload");
    assert!(process.classes.swap_in.latency.count >= 10_000);
    assert!(process.classes.major_file.latency.count >= 8_000);
    assert!(live.timeline.iter().any(|row| row.flagged));
    assert!(
        live.timeline.len() >= 5,
        "{} intervals",
        live.timeline.len()
    );
}

/// SIGKILL in the middle of a recording: `report` reads every interval written before it,
/// says the file has no end, and calls the run unfinished.
#[test]
fn a_killed_recorder_leaves_a_readable_recording() {
    require_root();
    let before = machine_state();
    let scratch = Scratch::new("rec-sigkill");
    let recording = scratch.file("killed.mtr");
    let mut recorder = Command::new(memtrace_bin())
        .args(["record", "--quiet", "--interval", "100ms", "-o"])
        .arg(&recording)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the recorder");
    memtrace_tests::wait_for_recording_header(&recording);
    std::thread::sleep(Duration::from_millis(1500));
    recorder.kill().expect("SIGKILL");
    recorder.wait().expect("reap");

    let json = scratch.file("killed.json");
    let output = Command::new(memtrace_bin())
        .arg("report")
        .arg(&recording)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("memtrace report");
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("without an end frame") || stderr.contains("cut short"),
        "the early end is said: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let (_, report) = read_report(&json);
    assert_eq!(report.stop_reason, StopReason::Unfinished);
    assert!(
        report.timeline.len() >= 8,
        "1.5 s at 100 ms intervals kept only {} intervals",
        report.timeline.len()
    );
    assert!(report.faults > 0, "a whole machine faults in 1.5 s");
    assert_eq!(machine_state(), before, "SIGKILL leaves no program behind");
}

/// Missing, empty, foreign and cut-short-before-tracing files, and an output path that cannot
/// be written: one line, status 2, nothing traced.
#[test]
fn bad_files_and_paths_are_refused_before_tracing() {
    require_root();
    let before = machine_state();
    let scratch = Scratch::new("rec-bad");
    let empty = scratch.file("empty.mtr");
    std::fs::write(&empty, b"").expect("write");
    let foreign = scratch.file("foreign.mtr");
    std::fs::write(&foreign, b"PK\x03\x04 not a recording at all").expect("write");
    let header_only = scratch.file("start.mtr");
    std::fs::write(&header_only, b"MEMTRACE\x01\0\0\0\0\0\0\0").expect("write");
    let cases: [(&[&str], &str); 5] = [
        (&["report", "/nonexistent/run.mtr"], "No such file"),
        (&["report", empty.to_str().expect("utf-8")], "empty"),
        (
            &["report", foreign.to_str().expect("utf-8")],
            "not a memtrace recording",
        ),
        (
            &["report", header_only.to_str().expect("utf-8")],
            "no header",
        ),
        (
            &["record", "-d", "1", "-o", "/nonexistent/dir/run.mtr"],
            "/nonexistent/dir/run.mtr",
        ),
    ];
    for (args, expected) in cases {
        let output = run_memtrace(args, None);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("memtrace: tracing"),
            "{args:?} started tracing: {stderr}"
        );
    }
    assert_eq!(machine_state(), before);
}
