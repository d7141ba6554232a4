//! The builder's share of what figures mean: direct compaction counted once per attempt,
//! kswapd's CPU time per interval, faults' time split, untimed faults.
use memtrace_common::{
    EventKind, FaultClass, FaultEvent, StallEvent, StallKind, batch::MinorBatch,
    batch::UNTIMED_LATENCY, compaction, fault_flags,
};

use super::{IntervalBuilder, tests::close};
use crate::{
    collect::decode::Record,
    samples::{StallCategory, StallSample},
};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

/// A record of the direct-compaction attempt of thread `tid` that started at `start_ns`,
/// `since_ns` after its start.
fn compaction(tid: u32, start_ns: u64, since_ns: u64, bits: u32) -> Record {
    Record::Stall {
        event: StallEvent {
            kind: EventKind::Stall as u32,
            stall: StallKind::Compaction as u32,
            tgid: 7,
            tid,
            start_ns,
            latency_ns: since_ns,
            nr_reclaimed: 0,
            order: 9,
            gfp_flags: 0x1234,
            detail: bits,
            zones: 0,
            memcg_id: 0,
            comm: [b'c'; 16],
        },
        stall: StallKind::Compaction,
    }
}

fn compaction_of(sample: &crate::samples::IntervalSample) -> Option<&StallSample> {
    sample
        .processes
        .iter()
        .flat_map(|p| &p.stalls)
        .find(|s| s.kind == StallKind::Compaction as u32)
}

#[test]
fn an_attempt_over_several_zones_is_one_stall_with_its_whole_time() {
    let mut b = IntervalBuilder::new(0);
    let first = compaction::FIRST | compaction::ZONE_RUN;
    b.add(Ok(compaction(70, 100 * MS, 3 * MS, first)));
    b.add(Ok(compaction(70, 100 * MS, 8 * MS, compaction::ZONE_RUN)));
    // The same thread's next attempt, deferred everywhere: a stall without a zone run.
    b.add(Ok(compaction(70, 200 * MS, MS / 10, compaction::FIRST)));
    // Another thread, interleaved.
    b.add(Ok(compaction(71, 150 * MS, 2 * MS, first)));
    let sample = close(&mut b, S);
    let stalls = compaction_of(&sample).expect("compaction stalls");
    assert_eq!(stalls.latency.count(), 3, "one per attempt");
    assert_eq!(stalls.latency.total_ns(), 8 * MS + MS / 10 + 2 * MS);
    assert_eq!(stalls.zone_runs, 3);
    assert_eq!(stalls.allocations[0].count, 3);
    let stalled: u64 = sample
        .stall_time
        .iter()
        .flat_map(|s| &s.ns)
        .filter(|(c, _)| *c == StallCategory::Compaction)
        .map(|(_, ns)| ns)
        .sum();
    assert_eq!(stalled, 8 * MS + MS / 10 + 2 * MS);
}

#[test]
fn a_zone_that_ends_after_the_close_adds_time_but_no_stall() {
    let mut b = IntervalBuilder::new(0);
    let first = compaction::FIRST | compaction::ZONE_RUN;
    b.add(Ok(compaction(70, S - 5 * MS, 2 * MS, first)));
    let one = close(&mut b, S);
    assert_eq!(compaction_of(&one).expect("counted").latency.count(), 1);
    b.add(Ok(compaction(70, S - 5 * MS, 9 * MS, compaction::ZONE_RUN)));
    let two = close(&mut b, 2 * S);
    let late = compaction_of(&two).expect("the late zone's run");
    assert_eq!((late.latency.count(), late.zone_runs), (0, 1));
    // The 7 ms after what was counted: 3 ms still in the first interval, 4 ms in the second.
    let parts: Vec<(u64, u64)> = two
        .stall_time
        .iter()
        .map(|s| (s.interval, s.ns[0].1))
        .collect();
    assert_eq!(parts, vec![(0, 3 * MS), (1, 4 * MS)]);
    // A record of an attempt nobody opened (its first record was lost) is dropped.
    b.add(Ok(compaction(72, 2 * S, MS, compaction::ZONE_RUN)));
    assert!(compaction_of(&close(&mut b, 3 * S)).is_none());
}

#[test]
fn attempts_succeed_defer_or_fail_and_a_late_success_still_counts() {
    let mut b = IntervalBuilder::new(0);
    let first = compaction::FIRST | compaction::ZONE_RUN;
    // Succeeded: a zone ran, then the allocation got its page.
    b.add(Ok(compaction(70, 100 * MS, 3 * MS, first)));
    b.add(Ok(compaction(70, 100 * MS, 4 * MS, compaction::READY)));
    // Deferred: its only zone was deferred.
    b.add(Ok(compaction(
        71,
        100 * MS,
        MS,
        compaction::FIRST | compaction::DEFERRED,
    )));
    // Failed: a zone deferred, another ran, no page.
    b.add(Ok(compaction(
        72,
        100 * MS,
        MS,
        compaction::FIRST | compaction::DEFERRED,
    )));
    b.add(Ok(compaction(72, 100 * MS, 5 * MS, compaction::ZONE_RUN)));
    // Counted open at the close; its page comes after.
    b.add(Ok(compaction(73, S - MS, MS / 2, first)));
    let one = close(&mut b, S);
    let stalls = compaction_of(&one).expect("stalls");
    assert_eq!(stalls.latency.count(), 4);
    assert_eq!((stalls.succeeded, stalls.deferred), (1, 1));
    b.add(Ok(compaction(73, S - MS, 2 * MS, compaction::READY)));
    // A late record of the deferred attempt changes nothing: it was counted deferred.
    b.add(Ok(compaction(71, 100 * MS, 2 * MS, compaction::READY)));
    let two = close(&mut b, 2 * S);
    let late = compaction_of(&two).expect("the late success");
    assert_eq!((late.latency.count(), late.succeeded), (0, 1));
}

#[test]
fn kswapd_cpu_is_the_growth_between_readings() {
    let mut b = IntervalBuilder::new(0);
    b.kswapd_cpu(&[(0, 5 * S)]);
    b.kswapd_cpu(&[(0, 5 * S + 30 * MS)]);
    let one = close(&mut b, S);
    assert_eq!(one.kswapd.len(), 1);
    assert_eq!(one.kswapd[0].cpu_ns, Some(30 * MS));
    b.kswapd_cpu(&[(0, 5 * S + 30 * MS)]);
    let two = close(&mut b, 2 * S);
    assert_eq!(two.kswapd[0].cpu_ns, Some(0), "measured, idle");
    // No reading at all: not measured.
    let three = close(&mut b, 3 * S);
    assert!(three.kswapd.is_empty());
}

fn fault(
    class: FaultClass,
    latency_ns: u64,
    off_cpu_ns: u64,
    waiting_ns: u64,
    flags: u32,
) -> Record {
    Record::Fault {
        event: FaultEvent {
            kind: EventKind::Fault as u32,
            class: class as u32,
            tgid: 9,
            tid: 9,
            start_ns: 100 * MS,
            latency_ns,
            flags,
            off_cpu_ns,
            waiting_ns,
            comm: [b'r'; 16],
            ..FaultEvent::default()
        },
        class,
    }
}

#[test]
fn fault_time_splits_and_minor_blocked_time_reaches_the_timeline() {
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(fault(
        FaultClass::Minor,
        10 * MS,
        9 * MS,
        MS,
        fault_flags::PARKED,
    )));
    b.add(Ok(fault(FaultClass::Minor, 2 * MS, 0, 0, 0)));
    b.add(Ok(fault(
        FaultClass::Thp,
        4 * MS,
        2 * MS,
        2 * MS,
        fault_flags::PARKED,
    )));
    let sample = close(&mut b, S);
    let p = &sample.processes[0];
    let minor = p.faults.iter().find(|c| c.class == 0).expect("minor");
    assert_eq!(
        (minor.split.off_cpu_ns, minor.split.waiting_ns),
        (9 * MS, MS)
    );
    assert_eq!(minor.split.blocked_ns(), 8 * MS);
    let thp = p
        .faults
        .iter()
        .find(|c| c.class == FaultClass::Thp as u32)
        .expect("thp");
    assert_eq!(thp.split.blocked_ns(), 0);
    // Only blocked time of minor faults is a stall: 8 ms, none of the THP fault's waiting.
    let stalled: Vec<(StallCategory, u64)> = sample
        .stall_time
        .iter()
        .flat_map(|s| s.ns.clone())
        .collect();
    assert_eq!(stalled, vec![(StallCategory::MinorBlocked, 8 * MS)]);
}

#[test]
fn untimed_faults_are_counted_in_no_class() {
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(fault(FaultClass::Minor, 0, 0, 0, fault_flags::UNTIMED)));
    let mut batch = MinorBatch {
        kind: EventKind::MinorBatch as u32,
        count: 3,
        first_ns: 0,
        entries: [0; memtrace_common::batch::MINOR_BATCH_LEN],
    };
    batch.entries[0] = MinorBatch::entry(9, UNTIMED_LATENCY);
    batch.entries[1] = MinorBatch::entry(9, 1_500);
    batch.entries[2] = MinorBatch::entry(9, UNTIMED_LATENCY);
    b.add(Ok(Record::MinorBatch(Box::new(batch))));
    let sample = close(&mut b, S);
    let p = &sample.processes[0];
    assert_eq!(p.untimed_faults, 3);
    assert_eq!(p.faults.len(), 1);
    assert_eq!(p.faults[0].latency.count(), 1);
    assert_eq!(p.faults[0].latency.total_ns(), 1_500);
}
