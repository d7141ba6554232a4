//! From a sample to the kill's picture, and the kill's aftermath.
use memtrace_common::{
    EventKind,
    oom::{AftermathOp, OomAftermathEvent, OomReclaim, oom_flags},
};

use super::{LIMIT_PAGES, NO_LIMIT, candidate, kill_event, level, sample};
use crate::{
    collect::oom::is_kill,
    model::oom::{OomKill, OomLog, domain::Constraint},
};

#[test]
fn a_memcg_kill_in_its_domain() {
    let kill = OomKill::from_sample(&sample(kill_event()));
    assert_eq!(kill.at_s, 4.0);
    assert_eq!(
        (kill.victim.pid, kill.victim.anon_rss_kb),
        (4242, 12_200 * 4)
    );
    assert!(kill.trigger.is_victim);
    let d = &kill.domain;
    assert_eq!(d.constraint, Constraint::Memcg);
    assert_eq!(
        d.cgroup.as_deref(),
        Some(std::path::Path::new("/sys/fs/cgroup/memory/box"))
    );
    assert_eq!(
        (d.limit_bytes, d.swap_limit_bytes),
        (Some(48 << 20), Some(48 << 20))
    );
    assert_eq!(d.totalpages, LIMIT_PAGES);
    // rss 12900 + page tables 37, no adjustment.
    assert_eq!(kill.badness.points, 12_937);
    assert_eq!(kill.badness.score_per_mille, 12_937 * 1000 / 12_288);
    // Machine-wide, the same hog looks harmless: oom_score 1000 + 2.
    assert_eq!(kill.badness.proc_oom_score, 1002);
    let pids: Vec<u32> = kill.candidates.list.iter().map(|c| c.pid).collect();
    assert_eq!(pids, vec![4242, 5000]);
    assert!(kill.candidates.list[0].victim);
    assert_eq!(kill.candidates.taken_ms_after_kill, 2.0);
    assert!(kill.kernel_log.as_ref().is_some_and(|l| l.agrees));
    assert_eq!(kill.aftermath.freed_kb, 12_900 * 4);
}

#[test]
fn a_global_kill_uses_ram_and_swap() {
    let mut event = kill_event();
    event.memcg[0] = level(77, 100, NO_LIMIT, 0);
    event.reclaim_kind = OomReclaim::Direct as u32;
    event.victim_oom_score_adj = 100;
    let mut s = sample(event);
    s.stack = Err("hidden".into());
    s.host.swap_pages = 262_144;
    s.kmsg = None;
    let kill = OomKill::from_sample(&s);
    assert_eq!(kill.domain.constraint, Constraint::Global);
    assert_eq!(kill.domain.totalpages, 6_262_144);
    assert_eq!(kill.domain.cgroup, None);
    assert_eq!(kill.badness.points, 12_937 + 100 * 6_262);
    assert_eq!(kill.trigger.stack_unavailable.as_deref(), Some("hidden"));
    // The whole machine is the domain: processes of other memcgs count.
    let mut s = s.clone();
    s.candidates = Ok(vec![candidate(6000, 1, 0, 99)]);
    assert_eq!(OomKill::from_sample(&s).candidates.in_domain, 2);
}

#[test]
fn memcg_swap_counts_in_the_domain() {
    let mut event = kill_event();
    event.memcg[0].swap_max_pages = LIMIT_PAGES + 4096;
    let mut s = sample(event);
    s.host.swap_pages = 1_000;
    // v1: memsw - memory = 4096 pages of swap allowed, but only 1000 exist.
    assert_eq!(
        OomKill::from_sample(&s).domain.totalpages,
        LIMIT_PAGES + 1_000
    );
    s.host.swap_pages = 100_000;
    assert_eq!(
        OomKill::from_sample(&s).domain.totalpages,
        LIMIT_PAGES + 4_096
    );
}

#[test]
fn marks_without_a_kill_are_told_apart() {
    let mut event = kill_event();
    assert!(is_kill(&event));
    event.flags &= !oom_flags::KILL_SIGNAL_SEEN;
    assert!(!is_kill(&event));
    event.flags &= !oom_flags::KILL_SIGNAL_HOOKED;
    assert!(
        is_kill(&event),
        "without the SIGKILL hook every mark counts as a kill"
    );
}

fn step(op: u32, ms: u64) -> OomAftermathEvent {
    OomAftermathEvent {
        kind: EventKind::OomAftermath as u32,
        op,
        pid: 4242,
        tgid: if op == AftermathOp::Exit as u32 {
            4242
        } else {
            0
        },
        ts_ns: 5_000_000_000 + ms * 1_000_000,
    }
}

#[test]
fn aftermath_lands_on_its_kill_and_releases_the_live_view() {
    let mut log = OomLog::default();
    log.add(OomKill::from_sample(&sample(kill_event())));
    assert!(
        log.take_ready(5_100_000_000, false).is_empty(),
        "waits for the exit"
    );
    log.apply_aftermath(&step(AftermathOp::WakeReaper as u32, 2000));
    log.apply_aftermath(&step(AftermathOp::FinishReaping as u32, 2003));
    log.apply_aftermath(&step(AftermathOp::Exit as u32, 12));
    let after = &log.kills[0].aftermath;
    assert_eq!(after.exit_ms, Some(12.0));
    assert_eq!(
        (after.reaper_woken_ms, after.reaping_finished_ms),
        (Some(2000.0), Some(2003.0))
    );
    assert_eq!(log.take_ready(5_100_000_000, false).len(), 1);
    assert!(log.take_ready(9_000_000_000, true).is_empty(), "shown once");
    // Another process's exit changes nothing.
    let mut other = step(AftermathOp::Exit as u32, 20);
    other.tgid = 1;
    log.apply_aftermath(&other);
    assert_eq!(log.kills[0].aftermath.exit_ms, Some(12.0));
}

#[test]
fn an_exit_lands_on_the_kill_of_its_own_process_when_the_pid_was_killed_before() {
    let mut log = OomLog::default();
    log.add(OomKill::from_sample(&sample(kill_event())));
    // The pid is reused and its new process is killed 3 s later.
    let mut second = kill_event();
    second.ts_ns += 3_000_000_000;
    log.add(OomKill::from_sample(&sample(second)));
    log.apply_aftermath(&step(AftermathOp::Exit as u32, 3_000));
    assert_eq!(log.kills[0].aftermath.exit_ms, None);
    assert_eq!(log.kills[1].aftermath.exit_ms, Some(0.0));
    // An interval's kills are applied before its exits: the first process's exit, from before
    // the second kill, still lands on the first.
    log.apply_aftermath(&step(AftermathOp::Exit as u32, 7));
    assert_eq!(log.kills[0].aftermath.exit_ms, Some(7.0));
    assert_eq!(log.kills[1].aftermath.exit_ms, Some(0.0));
}

#[test]
fn the_live_view_shows_a_kill_after_a_second_without_exit() {
    let mut log = OomLog::default();
    log.add(OomKill::from_sample(&sample(kill_event())));
    assert_eq!(log.take_ready(6_000_000_001, false).len(), 1);
}
