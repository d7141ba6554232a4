//! `memtrace selfcheck`, as a user runs it: every figure agrees with this kernel's own, the
//! kernel settings it changes are restored and its sandboxes removed, also when it is stopped
//! by a signal.
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use memtrace::lab::selfcheck::{
    SelfCheck,
    check::{Check, Value, Verdict},
};
use memtrace_tests::{Scratch, machine_state, memtrace_bin, parse_selfcheck, require_root};

const TASK_DELAYACCT: &str = "/proc/sys/kernel/task_delayacct";

fn task_delayacct() -> String {
    std::fs::read_to_string(TASK_DELAYACCT)
        .expect("read task_delayacct")
        .trim()
        .to_string()
}

/// Every row the selfcheck must have, by scenario and figure, with the least the kernel's
/// side must show for the comparison to mean something.
const EXPECTED: &[(&str, &str, u64)] = &[
    ("faults", "minor faults", 16_384),
    ("faults", "major faults", 4_096),
    ("faults", "all faults", 20_480),
    ("swap storm", "pages swapped out", 10_000),
    ("swap storm", "pages swapped in", 10_000),
    ("swap storm", "reclaim stalls", 100),
    ("swap storm", "reclaim stall time", 1),
    ("swap storm", "swap-in faults", 10_000),
    ("swap storm", "swap-in fault time", 1),
    ("pages", "huge page (thp) faults", 32),
    ("pages", "faults' blocked time", 1),
    ("pages", "faults' wait for a CPU", 0),
    ("memcg OOM", "OOM kills in the memcg", 1),
    ("memcg OOM", "OOM kills on the machine", 1),
    ("memcg OOM", "victim pid", 1),
    ("memcg OOM", "victim comm", 0),
    ("memcg OOM", "victim anon-rss", 1),
    ("memcg OOM", "victim file-rss", 0),
    ("memcg OOM", "victim shmem-rss", 0),
    ("memcg OOM", "victim total-vm", 1),
];

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Count(n) | Value::Ns(n) | Value::Kb(n) => Some(*n),
        Value::Pid(pid) => Some(u64::from(*pid)),
        Value::Text(_) => None,
    }
}

fn find<'a>(run: &'a SelfCheck, scenario: &str, figure: &str) -> &'a Check {
    run.checks()
        .find(|c| c.scenario == scenario && c.figure == figure)
        .unwrap_or_else(|| panic!("no {scenario:?} row {figure:?}: {run:#?}"))
}

#[test]
fn selfcheck_passes_on_this_kernel_and_restores_the_machine() {
    require_root();
    let before = machine_state();
    let delayacct_before = task_delayacct();
    let scratch = Scratch::new("selfcheck");
    let json = scratch.file("selfcheck.json");
    let output = Command::new(memtrace_bin())
        .arg("selfcheck")
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .expect("run memtrace selfcheck");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "selfcheck passed: all {} figures agree",
            EXPECTED.len()
        )),
        "{stdout}"
    );
    for scenario in ["faults", "swap storm", "memcg OOM"] {
        assert!(
            stderr.contains(&format!("memtrace selfcheck: {scenario}: ")),
            "no progress line for {scenario}: {stderr}"
        );
    }

    let text = std::fs::read_to_string(&json).expect("the JSON");
    let run = parse_selfcheck(&text);
    assert!(run.passed());
    assert_eq!(run.checks().count(), EXPECTED.len(), "{run:#?}");
    assert_eq!(run.task_delayacct_was, delayacct_before);
    for &(scenario, figure, least) in EXPECTED {
        let check = find(&run, scenario, figure);
        assert_eq!(check.verdict, Verdict::Pass, "{check:#?}");
        assert!(
            check.memtrace.is_some() && check.kernel.is_some(),
            "{check:#?}"
        );
        if let Some(kernel) = number(check.kernel.as_ref()) {
            assert!(
                kernel >= least,
                "{scenario} {figure}: the kernel's side {kernel} < {least}"
            );
        }
    }
    // The OOM victim is the same process in memtrace's report and in the kernel log.
    let pid = find(&run, "memcg OOM", "victim pid");
    assert_eq!(pid.memtrace, pid.kernel);
    let comm = find(&run, "memcg OOM", "victim comm");
    assert_eq!(comm.kernel, Some(Value::Text("mt-workload".into())));

    assert_eq!(
        task_delayacct(),
        delayacct_before,
        "task_delayacct not restored"
    );
    assert_eq!(
        machine_state(),
        before,
        "the selfcheck left something behind"
    );
}

#[test]
fn selfcheck_stopped_by_sigterm_restores_the_machine() {
    require_root();
    let before = machine_state();
    let delayacct_before = task_delayacct();
    let mut child = Command::new(memtrace_bin())
        .arg("selfcheck")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run memtrace selfcheck");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    // In the middle of the swap storm: its sandbox, zram swap and workload exist.
    while !seen.contains("memtrace selfcheck: swap storm: writes") {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "selfcheck ended early: {seen}");
        seen.push_str(&line);
    }
    assert_eq!(
        task_delayacct(),
        "1",
        "delay accounting is on during the run"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "selfcheck ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    seen.push_str(&rest);
    assert_eq!(status.code(), Some(1), "{seen}");
    assert!(
        seen.contains("memtrace: selfcheck stopped by SIGTERM"),
        "{seen}"
    );
    assert!(!seen.contains("panicked"), "{seen}");
    assert_eq!(
        task_delayacct(),
        delayacct_before,
        "task_delayacct not restored"
    );
    assert_eq!(
        machine_state(),
        before,
        "the selfcheck left something behind"
    );
}
