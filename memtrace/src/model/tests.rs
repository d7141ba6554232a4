//! The fold: samples in, the same model whichever way they come.
use memtrace_common::{FaultClass, StallKind};

use super::*;
use crate::samples::{
    Allocation, CgroupName, ClassSample, KswapdSample, StallCategory, StallTime, SwapByMemcg,
    SwapByTask,
};

const S: u64 = 1_000_000_000;

fn stats(values: &[u64]) -> LatencyStats {
    let mut stats = LatencyStats::new();
    for &v in values {
        stats.record(v);
    }
    stats
}

fn process(pid: u32, comm: &str, named: bool, minor: &[u64]) -> ProcessSample {
    ProcessSample {
        pid,
        comm: comm.to_string(),
        named,
        faults: vec![ClassSample {
            class: FaultClass::Minor as u32,
            latency: stats(minor),
            ..ClassSample::default()
        }],
        ..ProcessSample::default()
    }
}

fn interval(index: u64) -> IntervalSample {
    IntervalSample {
        index,
        start_ns: index * S,
        end_ns: (index + 1) * S,
        machine: MachineSample {
            mono_ns: (index + 1) * S,
            pswpin: index * 100,
            ..MachineSample::default()
        },
        ..IntervalSample::default()
    }
}

#[test]
fn processes_merge_across_intervals_and_keep_the_main_threads_name() {
    let mut model = Model::new(Header::default());
    let mut first = interval(0);
    first
        .processes
        .push(process(10, "worker", false, &[100, 200]));
    first.fault_records = 2;
    model.apply(&first);
    let mut second = interval(1);
    second.processes.push(process(10, "app", true, &[300]));
    second.processes.push(process(11, "", false, &[5]));
    second.fault_records = 2;
    model.apply(&second);
    let mut third = interval(2);
    third.processes.push(process(10, "worker", false, &[400]));
    model.apply(&third);
    let p = model.process(10).expect("pid 10");
    assert_eq!(
        p.comm, "app",
        "the main thread's name wins, later threads don't undo it"
    );
    let minor = p.class(FaultClass::Minor).expect("minor");
    assert_eq!((minor.count(), minor.total_ns()), (4, 1000));
    assert_eq!(model.comm_of(11), "");
    assert_eq!(model.records, 4);
    assert_eq!(model.timeline.intervals().len(), 3);
    // Rates come from consecutive machine readings: 100 pages over the second.
    assert_eq!(model.machine[1].pswpin_per_s, 100.0);
}

#[test]
fn stalls_swap_kswapd_and_cgroups_fold() {
    let mut model = Model::new(Header::default());
    let mut first = interval(0);
    first.processes.push(ProcessSample {
        pid: 7,
        stalls: vec![crate::samples::StallSample {
            kind: StallKind::MemcgReclaim as u32,
            latency: stats(&[1000, 3000]),
            pages: 64,
            allocations: vec![Allocation {
                order: 0,
                gfp_flags: 0xcc0,
                count: 2,
                zones: crate::samples::zones::StallZones {
                    read: 2,
                    ..Default::default()
                },
            }],
            ..Default::default()
        }],
        ..ProcessSample::default()
    });
    first.swap_by_task.push(SwapByTask {
        pid: 7,
        comm: "hog".into(),
        out_pages: 10,
        in_pages: 4,
    });
    first.swap_by_memcg.push(SwapByMemcg {
        memcg_id: 50,
        out_pages: 10,
        in_pages: 4,
    });
    first.cgroups.push(CgroupName {
        id: 50,
        path: Some("/sys/fs/cgroup/memory/box".into()),
        memory_limit_bytes: Some(64 << 20),
    });
    first.kswapd.push(KswapdSample {
        nid: 0,
        wakes: 1,
        awake_ns: vec![(0, S / 4)],
        cpu_ns: Some(S / 20),
        woken_by: vec![],
        wake_zones: vec![],
    });
    model.apply(&first);
    let mut second = interval(1);
    second.stall_time.push(StallTime {
        interval: 0,
        pid: 7,
        start_ns: 0,
        ns: vec![(StallCategory::MemcgReclaim, S / 10)],
    });
    second.kswapd.push(KswapdSample {
        nid: 0,
        wakes: 0,
        awake_ns: vec![(0, S / 4), (1, S / 2)],
        cpu_ns: Some(S / 10),
        woken_by: vec![],
        wake_zones: vec![],
    });
    model.apply(&second);
    let stall = model
        .process(7)
        .and_then(|p| p.stall(StallKind::MemcgReclaim))
        .expect("stall");
    assert_eq!((stall.latency.count(), stall.pages), (2, 64));
    assert_eq!(stall.allocations[&(0, 0xcc0)].0, 2);
    assert_eq!(stall.zones().read, 2);
    assert_eq!(
        model.swap.total,
        swap::SwapCounts {
            out_pages: 10,
            in_pages: 4
        }
    );
    assert_eq!(
        model.cgroup_path(50).as_deref(),
        Some("/sys/fs/cgroup/memory/box")
    );
    assert_eq!(model.kswapd.nodes[&0].awake_ns, S);
    assert_eq!(model.kswapd.nodes[&0].cpu_ns, Some(S / 20 + S / 10));
    assert_eq!(model.kswapd.nodes[&0].runs, 1);
    let intervals = model.timeline.intervals();
    assert_eq!(
        intervals[0].kswapd_awake_ns[&0],
        S / 2,
        "late time lands where it belongs"
    );
    assert_eq!(
        intervals[0].stalls[&(7, 0)].1[StallCategory::MemcgReclaim as usize],
        S / 10
    );
}

#[test]
fn unknown_ids_in_a_sample_are_counted_not_folded_into_another_kind() {
    let mut model = Model::new(Header::default());
    let mut sample = interval(0);
    let mut p = process(3, "x", true, &[1]);
    p.faults.push(ClassSample {
        class: 99,
        latency: stats(&[5]),
        ..ClassSample::default()
    });
    sample.processes.push(p);
    sample.malformed = 2;
    sample.first_malformed = Some("record kind 4 has 3 bytes, expected 528".into());
    model.apply(&sample);
    assert_eq!(model.malformed, 3);
    assert_eq!(
        model.process(3).map(ProcessFaults::total_count),
        Some(1),
        "the unknown class is not counted as a fault"
    );
    assert_eq!(
        model.first_malformed.as_deref(),
        Some("a sample entry of an unknown class or kind")
    );
}

#[test]
fn the_end_decides_the_duration_unless_a_window_cut_the_recording() {
    let header = Header {
        start_mono_ns: 0,
        ..Header::default()
    };
    let mut unfinished = Model::new(header.clone());
    unfinished.apply(&interval(0));
    unfinished.apply(&interval(1));
    assert_eq!(unfinished.stop_reason(), StopReason::Unfinished);
    assert_eq!(unfinished.elapsed_ns(), 2 * S, "the intervals' span");
    let mut finished = unfinished.clone();
    finished.finish(&End {
        stop: StopReason::Duration,
        elapsed_ns: 2 * S + 5,
        counters: KernelCounters::default(),
    });
    assert_eq!(finished.elapsed_ns(), 2 * S + 5);
    let mut window = Model::new(header);
    window.skip(&interval(0));
    window.apply(&interval(1));
    window.finish(&End {
        stop: StopReason::Duration,
        elapsed_ns: 9 * S,
        counters: KernelCounters::default(),
    });
    assert_eq!(window.elapsed_ns(), S, "only the window's intervals");
    assert_eq!(
        window.machine[0].pswpin_per_s, 100.0,
        "rates from the skipped reading"
    );
}

/// One process that faults `faults` times `latency` ns in interval `index` and exits in it.
fn short_lived(pid: u32, start_ns: u64, comm: &str, faults: u64, latency: u64) -> ProcessSample {
    ProcessSample {
        start_ns,
        exit_ns: Some(start_ns + 1),
        ..process(pid, comm, true, &vec![latency; faults as usize])
    }
}

#[test]
fn a_reused_pid_is_two_processes() {
    let mut model = Model::new(Header::default());
    let mut sample = interval(0);
    sample
        .processes
        .push(short_lived(42, 10, "heavy", 500, 1000));
    sample.processes.push(process(42, "true", true, &[7]));
    sample.processes[1].start_ns = 20;
    model.apply(&sample);
    let mut lives: Vec<(u64, u64, bool)> = model
        .processes()
        .map(|p| (p.start_ns, p.total_count(), p.exit_ns.is_some()))
        .collect();
    lives.sort_unstable();
    assert_eq!(lives, vec![(10, 500, true), (20, 1, false)]);
    assert_eq!(model.comm_of(42), "true", "the latest process with the pid");
    assert_eq!(model.name_of(42, 10), Some("heavy"));
}

#[test]
fn churn_is_folded_by_command_with_exact_totals() {
    let mut model = Model::new(Header {
        focus_pids: vec![],
        ..Header::default()
    });
    let mut pid = 1000;
    let mut expected_faults = 0;
    for index in 0..20u64 {
        let mut sample = interval(index);
        for i in 0..500u64 {
            pid += 1;
            // 80 commands: the busiest few are kept apart, every other one folds.
            let comm = format!("cmd{}", i % 80);
            let faults = 1 + i % 7;
            expected_faults += faults;
            sample
                .processes
                .push(short_lived(pid, index * S + i, &comm, faults, 100 + i));
        }
        model.apply(&sample);
        let entries = model.processes().count();
        assert!(
            entries <= KEEP_EXITED + KEEP_COMMANDS + 1,
            "{entries} entries after interval {index}"
        );
    }
    let total: u64 = model.processes().map(ProcessFaults::total_count).sum();
    assert_eq!(total, expected_faults, "every fault is still counted");
    let folded: u64 = model.processes().map(|p| p.folded).sum();
    let kept = model.processes().filter(|p| p.folded == 0).count() as u64;
    assert_eq!(
        folded + kept,
        20 * 500,
        "every process is one entry or folded into one"
    );
    assert!(model.processes().any(|p| p.comm == OTHER_COMMANDS));
    let folds = model.processes().filter(|p| p.folded > 0).count();
    assert_eq!(folds, KEEP_COMMANDS + 1, "64 commands and the rest");
}

#[test]
fn live_and_focus_processes_are_never_folded() {
    let mut model = Model::new(Header {
        focus_pids: vec![5],
        ..Header::default()
    });
    let mut sample = interval(0);
    sample.processes.push(process(1, "live", true, &[1]));
    sample.processes.push(short_lived(5, 3, "traced", 1, 1));
    for pid in 100..400 {
        sample.processes.push(short_lived(pid, 1, "x", 1, 1));
    }
    model.apply(&sample);
    assert!(model.process(1).is_some(), "a live process stays itself");
    assert!(model.process(5).is_some(), "a focus process stays itself");
}

#[test]
fn a_long_run_keeps_a_bounded_timeline_with_its_machine_rows_in_step() {
    let mut model = Model::new(Header::default());
    for index in 0..(timeline::MAX_INTERVALS as u64 * 3) {
        model.apply(&interval(index));
        assert_eq!(model.machine.len(), model.timeline.intervals().len());
        assert!(model.timeline.intervals().len() <= timeline::MAX_INTERVALS + 1);
    }
    let covered: u64 = model.timeline.intervals().iter().map(|i| i.len_ns()).sum();
    assert_eq!(
        covered,
        timeline::MAX_INTERVALS as u64 * 3 * S,
        "no time lost"
    );
}

#[test]
fn a_process_entry_stays_small_whatever_its_stall_kinds() {
    // Each process of an interval is an entry of the model's table at once: a burst of 10 000
    // processes must not grow it by 900 bytes each (the stall kinds live behind a box).
    eprintln!(
        "ProcessFaults: {} bytes",
        std::mem::size_of::<ProcessFaults>()
    );
    assert!(std::mem::size_of::<ProcessFaults>() <= 400);
}
