//! Bad input and missing privileges: a clear one-line error, a non-zero status, and nothing
//! left behind. Closed streams, threads given as processes, cgroups that vanish, and a killed
//! demo. And the demo, the first thing a new user runs.
#[path = "cli/support.rs"]
mod support;

use std::{
    io::{BufRead, BufReader},
    os::unix::process::{CommandExt, ExitStatusExt},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use memtrace::lab::sandbox::{Memcg, MemcgLimits};
use memtrace_tests::{Recorder, machine_state, memtrace_bin, require_root, run_memtrace};
use support::{DeepCgroup, KilledDemo, exited};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn a_pid_that_does_not_exist() -> u32 {
    (4_000_000..)
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .expect("a free pid")
}

#[test]
fn a_missing_pid_is_named_and_exits_2() {
    require_root();
    let before = machine_state();
    let pid = a_pid_that_does_not_exist().to_string();
    let output = run_memtrace(&["record", "--pid", &pid, "--duration", "1"], None);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&pid), "{stderr}");
    assert_eq!(machine_state(), before);
}

#[test]
fn a_missing_cgroup_is_named_and_exits_2() {
    require_root();
    let before = machine_state();
    let path = "/sys/fs/cgroup/memory/memtrace-no-such-cgroup";
    let output = run_memtrace(&["record", "--cgroup", path, "--duration", "1"], None);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(path), "{stderr}");
    assert_eq!(machine_state(), before);
}

#[test]
fn an_unprivileged_user_is_told_what_is_needed() {
    require_root();
    let before = machine_state();
    for args in [
        &["record", "--duration", "1"][..],
        &["demo"][..],
        &["record", "--pid", "1"][..],
    ] {
        let output = run_memtrace(args, Some(65534));
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("needs root") && stderr.contains("CAP_BPF"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(machine_state(), before);
}

#[test]
fn bad_durations_are_usage_errors() {
    let output = run_memtrace(&["record", "--duration", "5 parsecs"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("unknown unit"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn the_demo_reports_every_class_and_cleans_up() {
    require_root();
    let before = machine_state();
    let scratch = memtrace_tests::Scratch::new("demo");
    let svg = scratch.file("leak.svg");
    let output = run_memtrace(
        &[
            "demo",
            "--quiet",
            "--flamegraph",
            svg.to_str().expect("utf-8"),
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    for needle in [
        "minor",
        "major_file",
        "swap_in",
        "/proc/PID/stat minflt",
        "/proc/vmstat pswpin",
        // The leak: its slope and flag, its stacks, its forecast against the kill.
        "STEADY GROWTH",
        "grows steadily:",
        "leak::leak_pages (mt-workload)",
        "memtrace's forecast at its last reading: the memcg limit in",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    let flamegraph = std::fs::read_to_string(&svg).expect("the demo's flame graph");
    assert!(
        flamegraph.contains("leak_pages"),
        "the flame graph names the leak"
    );
    assert_eq!(machine_state(), before, "the demo left something behind");
}

/// Runs memtrace as root with `args` and checks it refused them as bad input: exit 2, one line
/// on stderr that has `needle`, no tracing started, no panic, nothing left behind.
fn assert_refused(args: &[&str], needle: &str) {
    let before = machine_state();
    let output = run_memtrace(args, None);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    assert!(stderr.starts_with("memtrace: "), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: no {needle:?} in {stderr}"
    );
    assert!(!stderr.contains("memtrace: tracing"), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(machine_state(), before, "{args:?} left something behind");
}

/// Every bad input the testers found, and its neighbours.
const BAD_INPUT: &[(&[&str], &str)] = &[
    (
        &["record", "-d", "18446744073709551615"],
        "maximum of 100 years",
    ),
    (
        &["record", "-i", "99999999999999999999"],
        "maximum of 100 years",
    ),
    (
        &["record", "--min-stall", "99999999999999999999"],
        "maximum of 100 years",
    ),
    (&["record", "-d", "876001h"], "maximum of 100 years"),
    (
        &["record", "--stacks", "--stacks-every", "0"],
        "0 is not in 1..",
    ),
    (
        &["record", "--stacks-every", "3"],
        "required arguments were not provided: --stacks",
    ),
    (
        &["record", "--stacks", "--flamegraph", "/nonexistent/x.svg"],
        "cannot write /nonexistent/x.svg",
    ),
    (&["record", "-d", "0.1ns"], "rounds to zero nanoseconds"),
    (&["record", "--min-stall", "0"], "longer than zero"),
    (&["record", "-d", "1e9"], "unknown unit \"e9\""),
    (&["record", "--duration=-5s"], "not a duration"),
    (&["record", "--ring-size", "3"], "power of two"),
    (
        &["record", "--ring-size", "99999999999"],
        "not a number of MiB",
    ),
    (&["record", "--frobnicate"], "'--frobnicate'"),
    (&["record", "--children"], "--pid"),
    (&["record", "--pid", "0"], "no such process: pid 0"),
    (
        &[
            "record",
            "--cgroup",
            "/sys/fs/cgroup/memtrace-no-such-cgroup",
        ],
        "no such cgroup",
    ),
    (
        &["record", "--cgroup", "/proc/self/status/memtrace"],
        "Not a directory",
    ),
    (&["record", "--json", "/", "-d", "1"], "is a directory"),
    // Thresholds: Rust's float parser takes `nan` and `inf`, which used to reach the JSON as
    // `null`.
    (
        &["record", "--stall-threshold", "nan"],
        "'--stall-threshold <PERCENT>': not a finite number",
    ),
    (
        &["record", "--psi-threshold", "inf"],
        "'--psi-threshold <PERCENT>': not a finite number",
    ),
    (
        &["record", "--stall-threshold=-infinity"],
        "not a finite number",
    ),
    (
        &["record", "--psi-threshold", "1e999"],
        "not a finite number",
    ),
    (&["record", "--psi-threshold=-5"], "must be zero or more"),
    (&["record", "--stall-threshold", "10%"], "not a percentage"),
    (
        &[
            "report",
            "/nonexistent/memtrace.mtr",
            "--from",
            "99999999999999999999",
        ],
        "100 years",
    ),
    (&["selfcheck", "--json", "/"], "is a directory"),
    (&["selfcheck", "--allow-global"], "'--allow-global-reclaim'"),
];

#[test]
fn every_bad_input_is_one_line_and_exit_2_before_tracing() {
    require_root();
    for (args, needle) in BAD_INPUT {
        assert_refused(args, needle);
    }
}

#[test]
fn a_cgroup_path_longer_than_path_max_is_named_too_long() {
    require_root();
    let before = machine_state();
    let limits = MemcgLimits {
        memory_bytes: 1 << 30,
        swap_bytes: None,
    };
    let mut memcg = Memcg::create(&limits).expect("a sandbox memcg");
    {
        let deep = DeepCgroup::create(memcg.path(), 4200);
        assert!(deep.path.as_os_str().len() > 4096);
        let path = deep.path.to_str().expect("a UTF-8 path");
        assert_refused(
            &["record", "--cgroup", path, "-d", "1"],
            "File name too long",
        );
        let output = run_memtrace(&["record", "--cgroup", path, "-d", "1"], None);
        let stderr = stderr_of(&output);
        assert!(stderr.len() < 300, "a short line: {stderr}");
        assert!(!stderr.contains("no such cgroup"), "{stderr}");
    }
    memcg.remove().expect("remove the sandbox");
    assert_eq!(machine_state(), before);
}

#[test]
fn a_thread_id_traces_its_process_and_says_so() {
    require_root();
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, wait) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: gettid has no failure mode.
        let _ = tx.send(unsafe { libc::gettid() } as u32);
        let _ = wait.recv();
    });
    let tid = rx.recv().expect("the thread's id");
    let me = std::process::id();
    assert_ne!(tid, me);
    let output = run_memtrace(
        &["record", "--pid", &tid.to_string(), "-d", "1", "-q"],
        None,
    );
    drop(stop);
    thread.join().expect("the thread ends");
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let note = format!("memtrace: {tid} is a thread of process {me}; tracing process {me}");
    let at = lines.iter().position(|l| *l == note);
    let tracing = lines
        .iter()
        .position(|l| l.starts_with(&format!("memtrace: tracing page faults of pid {me},")));
    assert!(
        at.is_some() && tracing.is_some() && at < tracing,
        "{stderr}"
    );
    assert!(!stderr.contains("pidfd"), "{stderr}");
}

/// `memtrace ARGS` as root without the capabilities in `drop` (setpriv(1) syntax).
fn run_without(drop: &str, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .arg(format!("--bounding-set={drop}"))
        .arg("--inh-caps=-all")
        .arg(memtrace_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv (util-linux)")
}

#[test]
fn missing_capabilities_are_named_on_one_line() {
    require_root();
    let before = machine_state();
    let record = ["record", "-d", "1", "-q"];
    for (drop, args, named) in [
        (
            "-perfmon,-sys_admin,-bpf",
            &record[..],
            "lacks CAP_BPF, CAP_PERFMON: ",
        ),
        ("-sys_admin,-bpf", &record[..], "lacks CAP_BPF: "),
        (
            "-sys_admin",
            &["demo", "--quiet"][..],
            "lacks CAP_SYS_ADMIN: ",
        ),
    ] {
        let output = run_without(drop, args);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{drop}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{drop}: {stderr}");
        assert!(stderr.contains(named), "{drop}: {stderr}");
        assert!(!stderr.contains("Operation not permitted"), "{stderr}");
    }
    // CAP_BPF and CAP_PERFMON are enough to trace; CAP_SYS_ADMIN could replace both.
    let output = run_without("-sys_admin", &record);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let output = run_without("-bpf,-perfmon", &record);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(machine_state(), before);
}

/// A syscall's result in `pre_exec`: -1 is an error.
fn check(result: i32) -> std::io::Result<()> {
    if result == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn a_closed_stdout_loses_the_report_and_says_so() {
    require_root();
    let mut command = Command::new(memtrace_bin());
    command
        .args(["record", "-d", "1", "-q"])
        .stdin(Stdio::null());
    // SAFETY: close(2) is async-signal-safe.
    unsafe { command.pre_exec(|| check(libc::close(1))) };
    let output = command.output().expect("run memtrace");
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("memtrace: the report is lost: stdout: it was closed when memtrace started"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_closed_pipe_on_stdout_and_stderr_is_no_panic() {
    require_root();
    // `memtrace record -d 1 -q 2>&1 | head -1`: the reader goes away while memtrace traces.
    let mut command = Command::new(memtrace_bin());
    command
        .args(["record", "-d", "1", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // SAFETY: dup2(2) is async-signal-safe.
    unsafe { command.pre_exec(|| check(libc::dup2(1, 2))) };
    let mut child = command.spawn().expect("spawn memtrace");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("the pipe"))
        .read_line(&mut first)
        .expect("read a line");
    let status = child.wait().expect("wait for memtrace");
    assert!(first.starts_with("memtrace: "), "{first}");
    // The report could not be written: 1, not a panic (101) nor a signal.
    assert_eq!(status.code(), Some(1), "{status}");
    assert_eq!(status.signal(), None);
}

#[test]
fn a_removed_cgroup_is_said_once() {
    require_root();
    let before = machine_state();
    let limits = MemcgLimits {
        memory_bytes: 1 << 30,
        swap_bytes: None,
    };
    let mut memcg = Memcg::create(&limits).expect("a sandbox memcg");
    let path = memcg.path().to_str().expect("a UTF-8 path").to_string();
    let recorder = Recorder::start(&["--cgroup", &path, "-d", "3", "-i", "200ms"]);
    memcg.remove().expect("remove the traced cgroup");
    let (_, stderr) = recorder.finish_with_stderr();
    let said: Vec<&String> = stderr
        .iter()
        .filter(|l| l.contains("was removed"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr:#?}");
    assert!(
        said[0].starts_with(&format!(
            "memtrace: warning: the traced cgroup {path} was removed"
        )),
        "{stderr:#?}"
    );
    assert_eq!(machine_state(), before);
}

#[test]
fn a_killed_demo_is_cleaned_up_by_the_next_root_command() {
    require_root();
    let before = machine_state();
    let child = Command::new(memtrace_bin())
        .args(["demo", "--quiet", "--scenario", "faults"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the demo");
    let mut demo = KilledDemo(child);
    let workload = wait_for_sandbox_process(&before);
    demo.kill();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !workload.iter().all(|&pid| exited(pid)) {
        assert!(
            Instant::now() < deadline,
            "the workload {workload:?} outlived the demo"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(
        machine_state(),
        before,
        "the killed demo left nothing to sweep"
    );
    let output = run_memtrace(&["record", "-d", "1", "-q"], None);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("removed a leftover of an earlier run"),
        "{stderr}"
    );
    assert_eq!(machine_state(), before, "{stderr}");
}

/// Waits until the demo's sandbox memcg holds a process; returns the processes in it.
fn wait_for_sandbox_process(before: &[String]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for entry in machine_state().iter().filter(|e| !before.contains(e)) {
            let Some(dir) = entry.strip_prefix("cgroup ") else {
                continue;
            };
            let procs = std::fs::read_to_string(format!("{dir}/cgroup.procs")).unwrap_or_default();
            let pids: Vec<u32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
            if !pids.is_empty() {
                return pids;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the demo made no sandbox with a process in it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
