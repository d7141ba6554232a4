//! Which memory cgroup a process's faults and stalls count in: the one its last full record
//! gave, batched faults included, until the kernel sends a record from another. (Pids above
//! the machine's pid_max: no live process is looked up.)
use memtrace_common::{
    EventKind, FaultClass, FaultEvent, ProcessEvent, ProcessOp, StallEvent, StallKind,
    batch::{MINOR_BATCH_LEN, MinorBatch},
};

use super::{IntervalBuilder, tests::close};
use crate::{
    collect::decode::Record,
    samples::{IntervalSample, ProcessSample},
};

const S: u64 = 1_000_000_000;

fn full_fault(tgid: u32, memcg_id: u64, start_ns: u64) -> Record {
    Record::Fault {
        event: FaultEvent {
            kind: EventKind::Fault as u32,
            class: FaultClass::Minor as u32,
            tgid,
            tid: tgid,
            start_ns,
            latency_ns: 700,
            memcg_id,
            comm: *b"app\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..FaultEvent::default()
        },
        class: FaultClass::Minor,
    }
}

fn batch(tgid: u32, faults: usize, first_ns: u64) -> Record {
    let mut batch = MinorBatch {
        kind: EventKind::MinorBatch as u32,
        count: faults as u32,
        first_ns,
        entries: [0; MINOR_BATCH_LEN],
    };
    for entry in &mut batch.entries[..faults] {
        *entry = MinorBatch::entry(tgid, 500);
    }
    Record::MinorBatch(Box::new(batch))
}

fn process(sample: &IntervalSample, pid: u32) -> &ProcessSample {
    sample
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("no process {pid} in {sample:?}"))
}

fn minor(p: &ProcessSample) -> u64 {
    p.faults.iter().map(|c| c.latency.count()).sum()
}

#[test]
fn batched_faults_count_in_the_memcg_of_the_last_full_record() {
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(full_fault(40001, 77, 1)));
    b.add(Ok(batch(40001, 10, 2)));
    let first = close(&mut b, S);
    let p = process(&first, 40001);
    assert_eq!((p.memcg_id, minor(p)), (77, 11));
    // The memcg is named once, in the interval it first appears in.
    assert_eq!(
        first.cgroups.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![77]
    );
    // The next interval has only batched faults: still memcg 77, not named again.
    b.add(Ok(batch(40001, 5, S + 1)));
    let second = close(&mut b, 2 * S);
    assert_eq!(process(&second, 40001).memcg_id, 77);
    assert!(second.cgroups.is_empty(), "{:?}", second.cgroups);
    // Moved: the kernel sends a full record from the new memcg, and the faults go there.
    b.add(Ok(full_fault(40001, 88, 2 * S + 1)));
    b.add(Ok(batch(40001, 3, 2 * S + 2)));
    let third = close(&mut b, 3 * S);
    assert_eq!(process(&third, 40001).memcg_id, 88);
    assert_eq!(
        third.cgroups.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![88]
    );
}

#[test]
fn memcgs_unseen_for_a_while_are_forgotten_and_named_again() {
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(full_fault(40003, 77, 1)));
    b.add(Ok(full_fault(40004, 78, 2)));
    let first = close(&mut b, S);
    assert_eq!(first.cgroups.len(), 2);
    // 77 stays busy; 78 goes quiet (a removed cgroup).
    let mut renamed = Vec::new();
    for i in 1..=super::NAME_AGAIN_AFTER + 1 {
        b.add(Ok(full_fault(40003, 77, i * S + 1)));
        let sample = close(&mut b, (i + 1) * S);
        renamed.extend(sample.cgroups.iter().map(|c| c.id));
    }
    assert!(renamed.is_empty(), "{renamed:?}");
    assert_eq!(b.named_memcgs.len(), 1, "78 forgotten, 77 kept");
    // 78's id is back (reused by a new cgroup, or the old one woke): named again.
    b.add(Ok(full_fault(40004, 78, 1000 * S)));
    let back = close(&mut b, 1001 * S);
    assert_eq!(
        back.cgroups.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![78]
    );
}

#[test]
fn stalls_carry_their_memcg_and_ended_processes_are_forgotten() {
    let mut b = IntervalBuilder::new(0);
    b.add(Ok(Record::Stall {
        event: StallEvent {
            kind: EventKind::Stall as u32,
            stall: StallKind::MemcgReclaim as u32,
            tgid: 40002,
            tid: 40002,
            start_ns: 10,
            latency_ns: 1000,
            nr_reclaimed: 4,
            order: 0,
            gfp_flags: 0,
            detail: 0,
            zones: 0,
            memcg_id: 55,
            comm: [0; 16],
        },
        stall: StallKind::MemcgReclaim,
    }));
    let first = close(&mut b, S);
    assert_eq!(process(&first, 40002).memcg_id, 55);
    b.add(Ok(Record::Process {
        event: ProcessEvent {
            kind: EventKind::Process as u32,
            op: ProcessOp::Exit as u32,
            tgid: 40002,
            parent_tgid: 0,
            start_ns: 0,
            ts_ns: S + 10,
            comm: [0; 16],
        },
        op: ProcessOp::Exit,
    }));
    // Its last batch can still arrive in the interval after its exit...
    close(&mut b, 2 * S);
    b.add(Ok(batch(40002, 2, S + 5)));
    let third = close(&mut b, 3 * S);
    assert_eq!(process(&third, 40002).memcg_id, 55);
    // ...after which it is forgotten.
    assert!(b.memcgs.is_empty(), "{:?}", b.memcgs);
}
