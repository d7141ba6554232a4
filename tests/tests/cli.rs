//! Bad input and missing privileges: a clear one-line error, a non-zero status, and nothing
//! left behind. And the demo, the first thing a new user runs.
use memtrace_tests::{machine_state, require_root, run_memtrace};

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
    let output = run_memtrace(&["demo", "--quiet"], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    for needle in [
        "minor",
        "major_file",
        "swap_in",
        "/proc/PID/stat minflt",
        "/proc/vmstat pswpin",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    assert_eq!(machine_state(), before, "the demo left something behind");
}
