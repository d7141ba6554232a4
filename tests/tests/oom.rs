//! OOM kills against the kernel's own counters, in sandboxed memcgs without swap: the victim,
//! the trigger, the domain, the badness, the candidates, kills outside the traced processes,
//! and the exit of a victim that is not the trigger.
#[path = "oom/support.rs"]
mod support;

use std::{os::unix::process::ExitStatusExt, path::Path, process::Command, time::Duration};

use memtrace::{lab::workload::oom::PairOutcome, model::oom::domain::Constraint};
use memtrace_tests::{Recorder, Workload, machine_state, memtrace_bin, require_root};
use support::{Hog, KernelCounts, KernelLog, LIMIT_PAGES, MIB, sandbox};

#[test]
fn a_hog_in_a_memcg_is_killed_and_reported() {
    require_root();
    let before = machine_state();
    let sandbox = sandbox();
    let mut hog = Hog::spawn(&["--mib", "200", "--step-mib", "16"]);
    sandbox.memcg.add_pid(hog.pid).expect("into the memcg");
    let counts = KernelCounts::read(&sandbox);
    let pid = hog.pid.to_string();
    let recorder = Recorder::start(&["--pid", &pid, "--duration", "60"]);
    hog.go();
    assert_eq!(hog.wait_killed().signal(), Some(libc::SIGKILL));
    let report = recorder.finish();
    counts.assert_match(&report, &sandbox);

    assert_eq!(
        report.oom_kills.len(),
        1,
        "exactly one OOM report: {report:?}"
    );
    let kill = &report.oom_kills[0];
    assert_eq!(kill.victim.pid, hog.pid);
    assert_eq!(
        kill.trigger.pid, hog.pid,
        "a lone hog triggers its own kill"
    );
    assert!(kill.trigger.is_victim, "the trigger is the victim");
    assert_eq!(kill.traced_victim, Some(true));
    let domain = &kill.domain;
    assert_eq!(domain.constraint, Constraint::Memcg);
    assert_eq!(
        domain.cgroup.as_deref().and_then(Path::to_str),
        Some(sandbox.memcg.path().to_str().expect("utf-8"))
    );
    assert_eq!(domain.limit_bytes, Some(48 * MIB));
    assert_eq!(domain.totalpages, LIMIT_PAGES);
    assert!(domain.disagreeing.is_empty(), "{domain:?}");

    // The badness is the kernel's formula on the kernel's own counters, in the memcg's domain.
    let inputs = &kill.badness.inputs;
    let points = kill.badness.points;
    let pgtables_bytes = i64::try_from(inputs.pgtables_bytes).expect("a number");
    let formula = inputs.rss_file_pages
        + inputs.rss_anon_pages
        + inputs.rss_shmem_pages
        + inputs.swap_entries
        + pgtables_bytes / 4096
        + i64::from(inputs.oom_score_adj) * (LIMIT_PAGES as i64 / 1000);
    assert_eq!(points, formula);
    // The hog fills the memcg with anonymous memory; its file pages (the shared memtrace
    // binary and libc, charged to whoever read them first) come on top in the kernel's count.
    let charged = points - inputs.rss_file_pages;
    eprintln!(
        "badness: {points} points ({} of them file pages) against a limit of {LIMIT_PAGES} pages",
        inputs.rss_file_pages
    );
    let off = (charged - LIMIT_PAGES as i64).abs() as f64 / LIMIT_PAGES as f64;
    assert!(
        off < 0.05,
        "{charged} charged points vs {LIMIT_PAGES} pages"
    );
    if let Some(log) = &kill.kernel_log {
        assert_eq!(log.line.constraint, "CONSTRAINT_MEMCG");
        assert!(log.agrees, "the kernel log agrees: {log:?}");
    }
    assert!(
        kill.aftermath.exit_ms.is_some(),
        "the victim's exit was seen"
    );
    drop(sandbox);
    assert_eq!(machine_state(), before, "something was left behind");
}

#[test]
fn the_kernels_choice_among_two_hogs_is_ranked_first() {
    require_root();
    let sandbox = sandbox();
    // The first hog holds 24 MiB with oom_score_adj 500: 6144 pages + 500 * 12 points.
    let mut sleeper = Hog::spawn(&["--mib", "24", "--step-mib", "8", "--oom-score-adj", "500"]);
    sandbox.memcg.add_pid(sleeper.pid).expect("into the memcg");
    sleeper.go();
    sleeper.wait_done();
    // The second grows to 40 MiB: at about 24 MiB the memcg is full, and it triggers the OOM.
    let mut grower = Hog::spawn(&["--mib", "40", "--step-mib", "4"]);
    sandbox.memcg.add_pid(grower.pid).expect("into the memcg");
    let counts = KernelCounts::read(&sandbox);
    let (a, b) = (sleeper.pid.to_string(), grower.pid.to_string());
    let recorder = Recorder::start(&["--pid", &a, "--pid", &b, "--duration", "60"]);
    grower.go();
    assert_eq!(sleeper.wait_killed().signal(), Some(libc::SIGKILL));
    let grower_survived = grower.wait_done_or_dead();
    recorder.interrupt();
    let report = recorder.finish();
    counts.assert_match(&report, &sandbox);

    // One kill, normally. The kernel sometimes kills a second time: the victim's exit_mmap()
    // sets MMF_OOM_SKIP before its last batch of pages is freed, and the grower's retried
    // charge can OOM in that window with the grower as the only candidate left. memtrace
    // must then report both, as the kernel's counters (checked above) count both.
    let kills = &report.oom_kills;
    if grower_survived {
        assert_eq!(kills.len(), 1, "{report:?}");
    } else {
        eprintln!("the kernel killed the grower too, prematurely (a known kernel race)");
        assert_eq!(kills.len(), 2, "{report:?}");
        assert_eq!(kills[1].victim.pid, grower.pid);
    }
    let kill = &kills[0];
    assert_eq!(kill.victim.pid, sleeper.pid, "the kernel chose the sleeper");
    assert_eq!(kill.trigger.pid, grower.pid, "the grower triggered it");
    assert!(!kill.trigger.is_victim, "the trigger is not the victim");
    let list = &kill.candidates.list;
    let pids: Vec<u32> = list.iter().map(|c| c.pid).collect();
    assert_eq!(pids, vec![sleeper.pid, grower.pid], "{list:?}");
    let points: Vec<i64> = list.iter().map(|c| c.points).collect();
    eprintln!("candidates: {pids:?} with points {points:?}");
    assert!(
        points[0] > points[1],
        "the victim has the higher points: {points:?}"
    );
    assert!(
        list[0].victim,
        "the first candidate is the victim: {list:?}"
    );
    assert_eq!(list[0].oom_score_adj, 500);
    assert_eq!(kill.badness.points, points[0]);
}

#[test]
fn a_kill_outside_the_traced_process_is_still_reported() {
    require_root();
    let sandbox = sandbox();
    // Traced: a small process outside the memcg that holds 1 MiB and sleeps.
    let mut bystander = Hog::spawn(&["--mib", "1"]);
    bystander.go();
    bystander.wait_done();
    let mut hog = Hog::spawn(&["--mib", "200", "--step-mib", "16"]);
    sandbox.memcg.add_pid(hog.pid).expect("into the memcg");
    let counts = KernelCounts::read(&sandbox);
    let pid = bystander.pid.to_string();
    let recorder = Recorder::start(&["--pid", &pid, "--duration", "60"]);
    hog.go();
    assert_eq!(hog.wait_killed().signal(), Some(libc::SIGKILL));
    // The kill record has its own ring: it is in before the hog's death is visible here, but
    // give the session a moment to sample it before stopping.
    std::thread::sleep(Duration::from_millis(500));
    recorder.interrupt();
    let report = recorder.finish();
    counts.assert_match(&report, &sandbox);

    assert_eq!(report.oom_kills.len(), 1, "{report:?}");
    let kill = &report.oom_kills[0];
    assert_eq!(kill.victim.pid, hog.pid);
    assert_eq!(kill.traced_victim, Some(false));
    assert_eq!(kill.domain.constraint, Constraint::Memcg);
    let traced: Vec<u32> = report.processes.iter().map(|p| p.pid).collect();
    assert!(
        !traced.contains(&hog.pid),
        "the hog's faults are not traced"
    );
}

#[test]
fn the_oom_demo_matches_the_kernel_and_cleans_up() {
    require_root();
    let before = machine_state();
    let output = Command::new(memtrace_bin())
        .args(["demo", "--scenario", "oom", "--quiet"])
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("== OOM kill at"),
        "no live OOM block on stderr:\n{stderr}"
    );
    for label in [
        "OOM kills in the sandbox memcg",
        "OOM kills on the machine",
        "victim pid",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"));
        let numbers: Vec<&str> = line[line.find(label).unwrap_or(0) + label.len()..]
            .split_whitespace()
            .take(2)
            .collect();
        assert_eq!(numbers[0], numbers[1], "{line}");
    }
    assert_eq!(machine_state(), before, "the demo left something behind");
}

/// Rounds of the pair test: the victim's exit races the kill's mark, so one round proves little.
const PAIR_ROUNDS: usize = 5;

#[test]
fn a_victim_that_is_not_the_trigger_has_its_exit_reported() {
    require_root();
    let before = machine_state();
    for round in 1..=PAIR_ROUNDS {
        // Odd rounds trace the memcg (the victim is traced), even ones a bystander outside it:
        // the kill and the victim's exit are reported whatever was traced.
        pair_round(round, round % 2 == 1);
    }
    assert_eq!(machine_state(), before, "something was left behind");
}

/// One round: A holds 20 MiB with oom_score_adj 1000 and pauses, B grows until the OOM killer
/// picks A. memtrace must name A the victim and B the trigger, and carry A's exit with its time,
/// as the kernel's counters, its log and A's parent saw them.
fn pair_round(round: usize, trace_memcg: bool) {
    let sandbox = sandbox();
    let mut bystander = Hog::spawn(&["--mib", "1"]);
    bystander.go();
    bystander.wait_done();
    let mut pair = Workload::spawn(&["oom-pair", "--victim-mib", "20", "--grower-mib", "40"]);
    sandbox.memcg.add_pid(pair.pid).expect("into the memcg");
    let counts = KernelCounts::read(&sandbox);
    let mut kmsg = KernelLog::open();
    let memcg = sandbox.memcg.path().to_str().expect("utf-8").to_string();
    let bystander_pid = bystander.pid.to_string();
    let filter = if trace_memcg {
        ["--cgroup", &memcg]
    } else {
        ["--pid", &bystander_pid]
    };
    let recorder = Recorder::start(&filter);
    pair.go();
    let outcome: PairOutcome = pair.finish();
    recorder.interrupt();
    let report = recorder.finish();
    counts.assert_match(&report, &sandbox);

    // A's parent saw it die of SIGKILL, and the kernel logged the kill of A first.
    assert_eq!(outcome.victim_signal, Some(libc::SIGKILL), "{outcome:?}");
    let killed = kmsg.killed_pids();
    let victims: Vec<u32> = report.oom_kills.iter().map(|k| k.victim.tgid).collect();
    assert_eq!(victims, killed, "memtrace's victims and the kernel log's");
    assert_eq!(killed.first(), Some(&outcome.victim_pid), "{outcome:?}");
    // The kernel sometimes kills the grower too (the race described in the test above).
    if outcome.grower_held {
        assert_eq!(report.oom_kills.len(), 1, "{outcome:?} {report:?}");
    } else {
        assert_eq!(outcome.grower_signal, Some(libc::SIGKILL), "{outcome:?}");
        assert_eq!(killed, [outcome.victim_pid, outcome.grower_pid]);
    }

    let kill = &report.oom_kills[0];
    assert_eq!(kill.victim.tgid, outcome.victim_pid);
    assert_eq!(kill.victim.oom_score_adj, 1000);
    assert_eq!(
        kill.trigger.tgid, outcome.grower_pid,
        "B triggered the kill"
    );
    assert!(!kill.trigger.is_victim, "the trigger is not the victim");
    assert_eq!(kill.traced_victim, Some(trace_memcg));
    let exit_ms = kill
        .aftermath
        .exit_ms
        .unwrap_or_else(|| panic!("round {round}: A's exit is missing: {:?}", kill.aftermath));
    let exit_s = kill.at_s + exit_ms / 1e3;
    assert!(
        exit_ms >= 0.0 && exit_s <= report.duration_s,
        "round {round}: A exited {exit_ms} ms after the kill at {} s, the recording lasted {} s",
        kill.at_s,
        report.duration_s
    );
    eprintln!(
        "round {round} ({}): victim {} killed at {:.3} s by trigger {}, exit {exit_ms:.3} ms \
         after the kill; kernel: {killed:?} killed, victim signal {:?} (real-time: {}), \
         grower held: {}",
        if trace_memcg {
            "memcg traced"
        } else {
            "bystander traced"
        },
        kill.victim.tgid,
        kill.at_s,
        kill.trigger.tgid,
        outcome.victim_signal,
        outcome.victim_realtime,
        outcome.grower_held
    );
}
