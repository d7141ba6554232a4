//! `memtrace diff` against the real kernel: the same sandboxed load recorded twice differs by
//! nothing beyond noise; under a tighter memcg limit its swap-ins and memcg reclaim do, and the
//! limit is marked. Cut-short and bad files are answered as `memtrace report` answers them.
use std::{
    io::Read,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use memtrace::{
    lab::{
        sandbox::{MemcgLimits, Sandbox},
        workload::faults::FaultOutcome,
    },
    model::diff::{Diff, MemcgDiff, ProcessDiff, RowDiff, noise::Verdict},
};
use memtrace_tests::{Scratch, Workload, machine_state, memtrace_bin, parse_diff, require_root};

const MIB: u64 = 1 << 20;

/// A child killed on drop: a failing assertion must not leave a recorder tracing.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The load: 80 MiB touched once (beyond a 64 MiB limit: reclaim and swap-outs), then 48 MiB
/// written and read back (fits in 64 MiB; in 40 MiB every page comes back from swap).
/// `--swap-mib 160` would not do: past the limit, reading back in order swaps every page in
/// whatever the limit (40 960 swap-ins at 64 MiB and at 40 MiB alike).
const LOAD: [&str; 7] = [
    "faults",
    "--file-mib",
    "0",
    "--anon-mib",
    "80",
    "--swap-mib",
    "48",
];

/// Records 3 s at 100 ms intervals of a memcg limited to `limit_mib` (with temporary swap)
/// while the load runs in it back to back, a steady load as in a load test; the sandbox goes
/// when this returns (or panics). Returns the memcg's path.
fn record(file: &Path, limit_mib: u64) -> String {
    let limits = MemcgLimits {
        memory_bytes: limit_mib * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(512 * MIB)).expect("sandbox");
    let memcg = sandbox.memcg.path().to_str().expect("utf-8").to_string();
    let mut recorder = Running(
        Command::new(memtrace_bin())
            .args([
                "record",
                "--quiet",
                "--interval",
                "100ms",
                "--duration",
                "3s",
            ])
            .args(["--cgroup", &memcg, "-o"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the recorder"),
    );
    memtrace_tests::wait_for_recording_header(file);
    let mut loads = 0;
    let status = loop {
        if let Some(status) = recorder.0.try_wait().expect("poll the recorder") {
            break status;
        }
        let mut workload = Workload::spawn(&LOAD);
        // Named before it joins the memcg: its every traced fault is mt-workload's.
        wait_for_comm(workload.pid, "mt-workload");
        sandbox.memcg.add_pid(workload.pid).expect("into the memcg");
        workload.go();
        let _: FaultOutcome = workload.finish();
        loads += 1;
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = recorder.0.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(status.success(), "the recorder failed: {status}: {stderr}");
    assert!(loads >= 2, "only {loads} loads ran in {limit_mib} MiB");
    eprintln!(
        "{}: {loads} loads in a {limit_mib} MiB memcg",
        file.display()
    );
    memcg
}

fn wait_for_comm(pid: u32, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let path = format!("/proc/{pid}/comm");
    while std::fs::read_to_string(&path).map_or(true, |c| c.trim_end() != comm) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} never named itself {comm}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn diff(args: &[&Path], json: bool) -> Output {
    let mut command = Command::new(memtrace_bin());
    command.arg("diff").args(args);
    if json {
        command.arg("--json");
    }
    command.output().expect("run memtrace diff")
}

/// `memtrace diff A B --json`, and its text.
fn diff_both(a: &Path, b: &Path) -> (Diff, String) {
    let output = diff(&[a, b], true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.is_empty(), "{stderr}");
    let json = parse_diff(std::str::from_utf8(&output.stdout).expect("UTF-8"));
    let output = diff(&[a, b], false);
    assert!(output.status.success());
    (json, String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Every figure flagged, in words, for the failure messages.
fn flagged(diff: &Diff) -> Vec<String> {
    let rows = diff
        .processes
        .iter()
        .flat_map(|p| p.rows.iter().map(move |r| (p.key.as_str(), r)))
        .chain(diff.swap.total.iter().map(|r| ("swap", r)))
        .chain(
            diff.swap
                .memcgs
                .iter()
                .flat_map(|m| m.rows.iter().map(|r| ("memcg", r))),
        );
    rows.flat_map(|(key, row)| {
        row.figures
            .iter()
            .filter(|f| f.verdict == Verdict::Differs)
            .map(move |f| format!("{key} {} {:?}: {:?} -> {:?}", row.kind, f.figure, f.a, f.b))
    })
    .collect()
}

fn workload(diff: &Diff) -> &ProcessDiff {
    let keys: Vec<&str> = diff.processes.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["mt-workload"], "only the load ran in the memcgs");
    &diff.processes[0]
}

fn row<'a>(process: &'a ProcessDiff, kind: &str) -> &'a RowDiff {
    process
        .rows
        .iter()
        .find(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} row: {process:#?}"))
}

fn the_memcg<'a>(diff: &'a Diff, a: &str, b: &str) -> &'a MemcgDiff {
    let memcgs = &diff.swap.memcgs;
    memcgs
        .iter()
        .find(|m| m.path_a.as_deref() == Some(a) && m.path_b.as_deref() == Some(b))
        .unwrap_or_else(|| panic!("{a} and {b} not paired: {memcgs:#?}"))
}

#[test]
fn a_tighter_limit_differs_beyond_noise_and_the_same_load_does_not() {
    require_root();
    let before = machine_state();
    let scratch = Scratch::new("diff-limits");
    let (base, again, tight) = (
        scratch.file("base.mtr"),
        scratch.file("again.mtr"),
        scratch.file("tight.mtr"),
    );
    let memcg_base = record(&base, 64);
    let memcg_again = record(&again, 64);
    let memcg_tight = record(&tight, 40);

    let (same, text) = diff_both(&base, &again);
    eprintln!("$ memtrace diff base.mtr again.mtr\n{text}");
    let load = workload(&same);
    assert!(load.processes_a >= 2 && load.processes_b >= 2, "{load:#?}");
    let minor = row(load, "minor");
    assert!(
        minor.count_a > 50_000 && minor.count_b > 50_000,
        "{minor:#?}"
    );
    let reclaim = row(load, "memcg_reclaim");
    assert!(reclaim.count_a > 0 && reclaim.count_b > 0, "{reclaim:#?}");
    assert!(!load.differs, "{:#?}", flagged(&same));
    assert_eq!(same.differing_figures, 0, "{:#?}", flagged(&same));
    assert_eq!(same.differing_settings, 0, "{:#?}", same.settings);
    let memcg = the_memcg(&same, &memcg_base, &memcg_again);
    assert_eq!(memcg.memory_limit_a_bytes, Some(64 * MIB));
    assert_eq!(memcg.memory_limit_b_bytes, Some(64 * MIB));
    assert!(!memcg.limit_differs);
    assert!(
        text.contains("\nB against A: no difference beyond noise\n"),
        "{text}"
    );
    assert!(text.contains("\n  limit A 64.0M, B 64.0M\n"), "{text}");

    let (tighter, text) = diff_both(&base, &tight);
    eprintln!("$ memtrace diff base.mtr tight.mtr\n{text}");
    let load = workload(&tighter);
    let swap_in = row(load, "swap_in");
    assert!(swap_in.count_b > 10 * swap_in.count_a, "{swap_in:#?}");
    assert!(swap_in.differs, "{swap_in:#?}");
    assert!(row(load, "memcg_reclaim").differs, "{load:#?}");
    let memcg = the_memcg(&tighter, &memcg_base, &memcg_tight);
    assert_eq!(memcg.memory_limit_a_bytes, Some(64 * MIB));
    assert_eq!(memcg.memory_limit_b_bytes, Some(40 * MIB));
    assert!(memcg.limit_differs && memcg.rows.iter().any(|r| r.differs));
    assert_eq!(tighter.differing_settings, 1, "the limit only");
    let headline = format!(
        "\nB against A: {} figures differ beyond noise (marked *); 1 setting differs (marked *)\n",
        tighter.differing_figures
    );
    assert!(text.contains(&headline), "{text}");
    for marked in ["* mt-workload (", "  * swap_in ", "  * memcg_reclaim "] {
        assert!(
            text.lines().any(|l| l.starts_with(marked)),
            "{marked:?}:\n{text}"
        );
    }
    assert!(text.contains("\n* limit A 64.0M, B 40.0M\n"), "{text}");
    drop(scratch);
    assert_eq!(machine_state(), before, "the sandboxes are gone");
}

/// The demo's recording kept by the test suite, and copies of it gone wrong.
#[test]
fn cut_short_and_bad_recordings() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../memtrace/tests/fixtures/demo-v1.mtr");
    let scratch = Scratch::new("diff-bad");
    let bytes = std::fs::read(&fixture).expect("read the fixture");
    let cut = scratch.file("cut.mtr");
    std::fs::write(&cut, &bytes[..bytes.len() - 400]).expect("write");
    let output = diff(&[&fixture, &cut], true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("cut short") && stderr.contains("compared over its"),
        "{stderr}"
    );
    let diff_of_cut = parse_diff(std::str::from_utf8(&output.stdout).expect("UTF-8"));
    assert!(
        diff_of_cut
            .b
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("cut short"))
    );
    assert_eq!(diff_of_cut.b.intervals + 1, diff_of_cut.a.intervals);
    assert!(diff_of_cut.a.problem.is_none());

    let empty = scratch.file("empty.mtr");
    std::fs::write(&empty, b"").expect("write");
    let missing = scratch.file("missing.mtr");
    for (bad, expected) in [
        (&missing, "No such file"),
        (&empty, "the file is empty"),
        (
            &fixture.with_file_name("demo-v1.json"),
            "not a memtrace recording",
        ),
    ] {
        for args in [[&fixture, bad], [bad, &fixture]] {
            let output = diff(&[args[0].as_path(), args[1].as_path()], false);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
            assert!(output.stdout.is_empty(), "nothing compared: {args:?}");
        }
    }
}
