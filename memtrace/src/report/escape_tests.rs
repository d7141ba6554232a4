//! Every text renderer escapes the names a process chose itself: a comm set with
//! `prctl(PR_SET_NAME)` to an escape sequence and a newline must neither recolour the terminal
//! nor forge a line. Each view is rendered twice, with a plain name and with the hostile one,
//! and must keep its line count.
use memtrace_common::{EventKind, StallEvent, StallKind};

use super::{
    Report, View, bars, events,
    fixture::{self, render},
    gfp::GfpNames,
    live, oom, stalls, table, timeline,
};
use crate::{collect::decode::Record, samples::IntervalSample, samples::machine::Thresholds};

/// A name a process can give itself (11 bytes: it fits in a comm).
const HOSTILE: &str = "ev\x1b[31mil\nx";
/// How it must appear.
const ESCAPED: &str = "ev\\x1b[31mil\\nx";

/// The fixture's intervals with postgres (pid 100) renamed `comm` everywhere it appears.
fn intervals_named(comm: &str) -> Vec<IntervalSample> {
    let mut intervals = fixture::intervals();
    for interval in &mut intervals {
        for process in interval.processes.iter_mut().filter(|p| p.pid == 100) {
            process.comm = comm.to_string();
        }
        for task in interval.swap_by_task.iter_mut().filter(|t| t.pid == 100) {
            task.comm = comm.to_string();
        }
        for node in &mut interval.kswapd {
            for waker in node.woken_by.iter_mut().filter(|w| w.pid == 100) {
                waker.comm = comm.to_string();
            }
        }
    }
    intervals
}

fn report_named(comm: &str) -> Report {
    let model = fixture::model_of(&intervals_named(comm), Some(&fixture::end()));
    let mut report = Report::new(&model, &View::default());
    for kill in &mut report.oom_kills {
        kill.victim.comm = comm.to_string();
        kill.trigger.comm = comm.to_string();
        kill.trigger.is_victim = false;
        for candidate in &mut kill.candidates.list {
            candidate.comm = comm.to_string();
        }
    }
    report
}

/// Renders with the plain and the hostile name; checks the hostile one came out escaped.
fn check(view: &str, render_named: impl Fn(&str) -> String) {
    let plain = render_named("postgres");
    let hostile = render_named(HOSTILE);
    assert!(
        plain.contains("postgres"),
        "{view}: the name is not shown:\n{plain}"
    );
    assert!(
        !hostile.contains('\x1b'),
        "{view}: a raw escape:\n{hostile}"
    );
    assert!(
        hostile.contains(ESCAPED),
        "{view}: no {ESCAPED:?} in:\n{hostile}"
    );
    assert_eq!(
        hostile.lines().count(),
        plain.lines().count(),
        "{view}: a forged line:\n{hostile}"
    );
}

#[test]
fn the_table_escapes_names() {
    check("table", |comm| {
        render(|out| table::write(&report_named(comm), 10, out))
    });
}

#[test]
fn the_bars_escape_names() {
    check("bars", |comm| {
        let report = report_named(comm);
        let process = report.processes.iter().find(|p| p.pid == 100);
        render(|out| bars::write_process(process.expect("postgres"), out))
    });
}

#[test]
fn the_stalls_swap_and_kswapd_lines_escape_names() {
    check("stalls", |comm| {
        render(|out| stalls::write(&report_named(comm), 10, out))
    });
    let text = render(|out| stalls::write(&report_named(HOSTILE), 10, out));
    // The stall rows, the swapper and the kswapd waker.
    assert_eq!(text.matches(ESCAPED).count(), 4, "{text}");
}

#[test]
fn the_timeline_escapes_names() {
    check("timeline", |comm| {
        render(|out| timeline::write(&report_named(comm).timeline, out))
    });
}

#[test]
fn the_live_line_escapes_names() {
    check("live", |comm| {
        let intervals = intervals_named(comm);
        let model = fixture::model_of(&intervals, None);
        let tick = fixture::tick(&model, &intervals[1], 0);
        render(|out| live::write(&tick, &Thresholds::default(), &[], out))
    });
}

#[test]
fn the_oom_block_escapes_names_and_paths() {
    check("oom", |comm| {
        render(|out| oom::write(&report_named(comm).oom_kills[0], out))
    });
    let mut report = report_named("postgres");
    let kill = &mut report.oom_kills[0];
    kill.victim.cgroup = Some(format!("/sys/fs/cgroup/{HOSTILE}").into());
    let text = render(|out| oom::write(kill, out));
    assert!(
        text.contains(&format!("cgroup /sys/fs/cgroup/{ESCAPED}")),
        "{text}"
    );
}

#[test]
fn the_event_log_escapes_names() {
    check("events", |name| {
        let mut comm = [0u8; 16];
        comm[..name.len()].copy_from_slice(name.as_bytes());
        let record = Record::Stall {
            event: StallEvent {
                kind: EventKind::Stall as u32,
                stall: 1,
                tgid: 100,
                tid: 100,
                start_ns: 0,
                latency_ns: 5_000_000,
                nr_reclaimed: 32,
                order: 0,
                gfp_flags: 0,
                detail: 0,
                zones: 0,
                memcg_id: 0,
                comm,
            },
            stall: StallKind::MemcgReclaim,
        };
        let gfp = GfpNames::default();
        render(|out| events::write_if_slow(&record, 1, &gfp, |_| "t".into(), out))
    });
}
