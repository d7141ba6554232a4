//! The interval builder: records in, samples out, without a kernel.
use memtrace_common::{
    EventKind, FaultClass, FaultEvent, KswapdEvent, KswapdOp, StallEvent, StallKind, SwapDir,
    SwapEvent,
    batch::{CommEvent, MINOR_BATCH_LEN, MinorBatch},
};

use super::{IntervalBuilder, split};
use crate::{
    collect::decode::{DecodeError, Record},
    samples::{StallCategory, machine::MachineSample},
};

const S: u64 = 1_000_000_000;

fn comm(name: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..name.len()].copy_from_slice(name);
    out
}

fn fault(tgid: u32, tid: u32, class: FaultClass, start_ns: u64, latency_ns: u64) -> Record {
    Record::Fault {
        event: FaultEvent {
            kind: EventKind::Fault as u32,
            class: class as u32,
            tgid,
            tid,
            start_ns,
            latency_ns,
            swapin_pages: u32::from(class == FaultClass::MajorSwap),
            comm: comm(if tid == tgid { b"main" } else { b"worker" }),
            ..FaultEvent::default()
        },
        class,
    }
}

fn at(ns: u64) -> MachineSample {
    MachineSample {
        mono_ns: ns,
        ..MachineSample::default()
    }
}

pub(super) fn close(builder: &mut IntervalBuilder, ns: u64) -> crate::samples::IntervalSample {
    builder.close(at(ns), Default::default(), |id| {
        crate::samples::CgroupName {
            id,
            path: Some(format!("/cg/{id}")),
            memory_limit_bytes: Some(id << 20),
        }
    })
}

#[test]
fn a_span_is_split_at_the_boundaries_and_the_part_before_the_start_dropped() {
    let boundaries = [10 * S, 11 * S, 12 * S];
    assert_eq!(
        split(&boundaries, 10 * S + S / 2, S),
        vec![(1, S / 2), (0, S / 2)]
    );
    assert_eq!(
        split(&boundaries, 9 * S, 2 * S + S / 2),
        vec![(1, S / 2), (0, S)]
    );
    // The open interval takes everything after its start.
    assert_eq!(split(&boundaries, 12 * S, 5 * S), vec![(2, 5 * S)]);
    assert_eq!(split(&boundaries, 11 * S, 0), vec![]);
}

#[test]
fn faults_are_aggregated_per_process_and_class_and_named_by_the_main_thread() {
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(fault(10, 11, FaultClass::Minor, 0, 100)));
    b.add(Ok(fault(10, 10, FaultClass::Minor, 0, 300)));
    b.add(Ok(fault(10, 11, FaultClass::MajorSwap, S / 4, S / 2)));
    b.add(Ok(fault(20, 20, FaultClass::MajorFile, 0, 9_000)));
    b.add(Err(DecodeError::UnknownKind { kind: 99 }));
    let sample = close(&mut b, S);
    assert_eq!((sample.index, sample.start_ns, sample.end_ns), (0, 0, S));
    assert_eq!(sample.fault_records, 4);
    assert_eq!(sample.malformed, 1);
    assert_eq!(
        sample.first_malformed.as_deref(),
        Some("unknown record kind 99")
    );
    let pids: Vec<u32> = sample.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![10, 20], "ordered by pid");
    let p = &sample.processes[0];
    assert_eq!((p.comm.as_str(), p.named), ("main", true));
    let classes: Vec<(u32, u64)> = p
        .faults
        .iter()
        .map(|c| (c.class, c.latency.count()))
        .collect();
    assert_eq!(
        classes,
        vec![
            (FaultClass::Minor as u32, 2),
            (FaultClass::MajorSwap as u32, 1)
        ]
    );
    assert_eq!(p.swapin_pages, 1);
    // The swap-in stalled the process for half the interval.
    let stalled = sample
        .stall_time
        .iter()
        .find(|s| s.pid == 10)
        .expect("stall time");
    assert_eq!(stalled.ns, vec![(StallCategory::SwapIn, S / 2)]);
    // The next interval starts empty.
    let next = close(&mut b, 2 * S);
    assert_eq!((next.index, next.start_ns), (1, S));
    assert!(next.processes.is_empty() && next.fault_records == 0 && next.malformed == 0);
}

#[test]
fn a_stall_that_ends_in_the_next_interval_credits_the_earlier_one() {
    let mut b = IntervalBuilder::new(0);
    close(&mut b, S);
    // 0.8 s .. 1.5 s of memcg reclaim, sent when it ended.
    b.add(Ok(Record::Stall {
        event: StallEvent {
            kind: EventKind::Stall as u32,
            stall: StallKind::MemcgReclaim as u32,
            tgid: 7,
            tid: 7,
            start_ns: 800_000_000,
            latency_ns: 700_000_000,
            nr_reclaimed: 32,
            order: 0,
            gfp_flags: 0xcc0,
            detail: 0,
            zones: 0,
            memcg_id: 0,
            comm: comm(b"hog"),
        },
        stall: StallKind::MemcgReclaim,
    }));
    let sample = close(&mut b, 2 * S);
    let parts: Vec<(u64, u64)> = sample
        .stall_time
        .iter()
        .map(|s| (s.interval, s.ns[0].1))
        .collect();
    assert_eq!(parts, vec![(0, 200_000_000), (1, 500_000_000)]);
    let stall = &sample.processes[0].stalls[0];
    assert_eq!(stall.kind, StallKind::MemcgReclaim as u32);
    assert_eq!((stall.pages, stall.latency.count()), (32, 1));
    assert_eq!(
        (stall.allocations[0].gfp_flags, stall.allocations[0].count),
        (0xcc0, 1)
    );
}

#[test]
fn minor_batches_and_renames() {
    let mut b = IntervalBuilder::new(0);
    let mut batch = MinorBatch {
        kind: EventKind::MinorBatch as u32,
        count: 3,
        first_ns: 0,
        entries: [0; MINOR_BATCH_LEN],
    };
    batch.entries[0] = MinorBatch::entry(5, 200);
    batch.entries[1] = MinorBatch::entry(5, 300);
    batch.entries[2] = MinorBatch::entry(6, 400);
    batch.entries[3] = MinorBatch::entry(7, 500);
    b.add(Ok(Record::MinorBatch(Box::new(batch))));
    b.add(Ok(Record::Comm(CommEvent {
        kind: EventKind::Comm as u32,
        tgid: 5,
        comm: comm(b"cat"),
    })));
    let sample = close(&mut b, S);
    assert_eq!(sample.fault_records, 3, "entries past count are ignored");
    let five = &sample.processes[0];
    assert_eq!((five.pid, five.comm.as_str(), five.named), (5, "cat", true));
    assert_eq!(five.faults[0].latency.total_ns(), 500);
    assert_eq!(sample.processes[1].comm, "", "a batch carries no name");
}

#[test]
fn kswapd_awake_time_runs_from_wake_to_sleep_across_intervals() {
    let kswapd = |op: KswapdOp, ts_ns| Record::Kswapd {
        op,
        event: KswapdEvent {
            kind: EventKind::Kswapd as u32,
            op: op as u32,
            nid: 0,
            order: 2,
            ts_ns,
            tgid: 9,
            gfp_flags: 0,
            comm: comm(b"alloc"),
            zid: 2,
            _pad: 0,
        },
    };
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(kswapd(KswapdOp::Wake, S / 2)));
    b.add(Ok(kswapd(KswapdOp::WokenBy, S / 2)));
    let first = close(&mut b, S);
    assert_eq!(first.kswapd[0].wakes, 1);
    assert_eq!(
        first.kswapd[0].awake_ns,
        vec![(0, S / 2)],
        "settled at close"
    );
    assert_eq!(
        (
            first.kswapd[0].woken_by[0].pid,
            first.kswapd[0].woken_by[0].order
        ),
        (9, 2)
    );
    b.add(Ok(kswapd(KswapdOp::Sleep, S + S / 4)));
    let second = close(&mut b, 2 * S);
    assert_eq!(second.kswapd[0].awake_ns, vec![(1, S / 4)]);
    assert_eq!(second.kswapd[0].wakes, 0);
    let third = close(&mut b, 3 * S);
    assert!(third.kswapd.is_empty(), "asleep and quiet: nothing to say");
}

#[test]
fn swap_traffic_by_task_and_memcg_names_each_memcg_once() {
    let swap = |dir: SwapDir, tgid, memcg_id| Record::Swap {
        dir,
        event: SwapEvent {
            kind: EventKind::Swap as u32,
            dir: dir as u32,
            tgid,
            pages: 2,
            memcg_id,
            ts_ns: 0,
            comm: comm(b"kswapd0"),
        },
    };
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(swap(SwapDir::Out, 1, 50)));
    b.add(Ok(swap(SwapDir::In, 2, 50)));
    b.add(Ok(swap(SwapDir::Out, 2, 0)));
    let first = close(&mut b, S);
    assert_eq!(first.swap_by_task.len(), 2);
    assert_eq!(
        (
            first.swap_by_task[1].out_pages,
            first.swap_by_task[1].in_pages
        ),
        (2, 2)
    );
    let memcg50 = first
        .swap_by_memcg
        .iter()
        .find(|m| m.memcg_id == 50)
        .expect("memcg 50");
    assert_eq!((memcg50.out_pages, memcg50.in_pages), (2, 2));
    assert_eq!(first.cgroups.len(), 1, "inode 0 (unknown) is never named");
    assert_eq!(first.cgroups[0].path.as_deref(), Some("/cg/50"));
    assert_eq!(first.cgroups[0].memory_limit_bytes, Some(50 << 20));
    b.add(Ok(swap(SwapDir::Out, 1, 50)));
    let second = close(&mut b, 2 * S);
    assert!(second.cgroups.is_empty(), "named once per recording");
}

#[test]
fn a_process_of_the_interval_stays_small_whatever_its_stall_kinds() {
    // One hash map entry per process of the interval: the stall kinds live behind a box.
    eprintln!(
        "ProcessAccum: {} bytes",
        std::mem::size_of::<super::ProcessAccum>()
    );
    assert!(std::mem::size_of::<super::ProcessAccum>() <= 320);
}
