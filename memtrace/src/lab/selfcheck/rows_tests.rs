//! The rows of each scenario on the renderers' fixture report, with the kernel's side set to
//! agree or to disagree by one.
use std::collections::BTreeSet;

use super::*;
use crate::{
    collect::taskstats::TaskDelays,
    error::Error,
    lab::{
        selfcheck::{
            MemcgObserved, Options, SCHEMA as SCHEMA_TAG, ScenarioOutcome, SelfCheck, Vmstat,
            check::Verdict, kmsg::KilledProcess, outcome, scenario, table,
        },
        workload::FaultCounters,
    },
    report::{
        Report,
        fixture::{self, schema_errors},
    },
};

/// postgres[100] of the fixture; counts set by each test.
const PID: u32 = 100;

fn observed(report: Report) -> Observed {
    Observed {
        report,
        pid: PID,
        stat: Ok(FaultCounters::default()),
        delays: Ok(TaskDelays::default()),
        vmstat: Vmstat::default(),
        memcg: Some(MemcgObserved {
            path: "/db.slice".into(),
            oom_kills: Ok(0),
            pswpin: None,
            pswpout: None,
        }),
        killed: None,
        output: String::new(),
        kswapd_cpu_ns: None,
    }
}

fn postgres(report: &mut Report) -> &mut ProcessReport {
    report
        .processes
        .iter_mut()
        .find(|p| p.pid == PID)
        .expect("postgres in the fixture")
}

/// (figure, verdict, note) of each row.
fn judged(rows: Vec<Row>) -> Vec<(String, Verdict, Option<String>)> {
    rows.into_iter()
        .map(|r| r.judge("test"))
        .map(|c| (c.figure, c.verdict, c.note))
        .collect()
}

fn failed(rows: Vec<Row>) -> Vec<String> {
    judged(rows)
        .into_iter()
        .filter(|(_, v, _)| *v == Verdict::Fail)
        .map(|(f, _, _)| f)
        .collect()
}

#[test]
fn fault_rows_hold_every_class_against_minflt_and_majflt() {
    let mut report = fixture::report();
    let p = postgres(&mut report);
    p.classes.minor.latency.count = 16_384;
    p.classes.major_file.latency.count = 8_000;
    p.classes.swap_in.latency.count = 192;
    let mut o = observed(report);
    o.stat = Ok(FaultCounters {
        minflt: 16_384,
        majflt: 8_192,
    });
    let figures: Vec<String> = judged(faults(&o)).into_iter().map(|r| r.0).collect();
    assert_eq!(figures, ["minor faults", "major faults", "all faults"]);
    assert!(failed(faults(&o)).is_empty(), "{:?}", judged(faults(&o)));

    o.stat = Ok(FaultCounters {
        minflt: 16_385,
        majflt: 8_192,
    });
    assert_eq!(failed(faults(&o)), ["minor faults", "all faults"]);
}

#[test]
fn a_scenario_that_faulted_too_little_or_a_missing_process_fails() {
    let mut o = observed(fixture::report());
    // The fixture's postgres faulted 4 + 3 times: far below the plan's floors.
    o.stat = Ok(FaultCounters {
        minflt: 4,
        majflt: 3,
    });
    let rows = judged(faults(&o));
    assert_eq!(rows[0].1, Verdict::Fail);
    assert!(
        rows[0]
            .2
            .as_deref()
            .is_some_and(|n| n.contains("fewer than 16384"))
    );
    assert_eq!(rows[2].1, Verdict::Pass, "no floor on the total: {rows:?}");

    o.pid = 4_000_000;
    let rows = judged(faults(&o));
    assert!(
        rows.iter()
            .all(|r| r.2.as_deref() == Some("memtrace reported nothing")),
        "{rows:?}"
    );
}

fn storm() -> Observed {
    let mut report = fixture::report();
    let share = report
        .swap
        .by_memcg
        .iter_mut()
        .find(|s| s.memcg_path.as_deref() == Some("/db.slice"))
        .expect("the fixture's memcg");
    share.out_pages = 40_000;
    share.in_pages = 30_000;
    // Machine-wide, what cgroup v1 is compared by.
    report.swap.out_pages = 40_000;
    report.swap.in_pages = 30_000;
    let p = postgres(&mut report);
    p.classes.swap_in.latency.count = 30_000;
    p.classes.swap_in.latency.total_ns = 90_000_000;
    p.stalls.memcg_reclaim.latency.count = 1_999;
    p.stalls.memcg_reclaim.latency.total_ns = 400_000_000;
    // The fixture's one direct reclaim stall (30 ms) counts as freepages too.
    let mut o = observed(report);
    o.vmstat = Vmstat {
        before: "pswpin 5\npswpout 10\n".into(),
        after: "pswpin 30005\npswpout 40010\n".into(),
    };
    o.delays = Ok(TaskDelays {
        swapin: Delay {
            count: 30_000,
            total_ns: 60_000_000,
        },
        freepages: Some(Delay {
            count: 2_000,
            total_ns: 429_000_000,
        }),
        ..TaskDelays::default()
    });
    o
}

#[test]
fn swap_storm_rows_use_the_machine_counters_on_cgroup_v1() {
    let o = storm();
    let checks: Vec<_> = swap_storm(&o).into_iter().map(|r| r.judge("s")).collect();
    let figures: Vec<&str> = checks.iter().map(|c| c.figure.as_str()).collect();
    assert_eq!(
        figures,
        [
            "pages swapped out",
            "pages swapped in",
            "reclaim stalls",
            "reclaim stall time",
            "swap-in faults",
            "swap-in fault time"
        ]
    );
    assert!(
        checks.iter().all(|c| c.verdict == Verdict::Pass),
        "{checks:#?}"
    );
    assert!(
        checks[0]
            .source
            .starts_with("/proc/vmstat pswpout (machine-wide")
    );
    assert_eq!(checks[3].memtrace, Some(Value::Ns(430_000_000)));
    // On v1 the machine's count is compared with memtrace's machine-wide one, not the memcg's.
    let mut o = storm();
    o.report.swap.out_pages -= 1;
    let checks: Vec<_> = swap_storm(&o).into_iter().map(|r| r.judge("s")).collect();
    assert_eq!(checks[0].verdict, Verdict::Fail, "{:?}", checks[0]);
}

#[test]
fn swap_storm_rows_prefer_the_memcg_counters_and_catch_a_difference() {
    let mut o = storm();
    if let Some(memcg) = o.memcg.as_mut() {
        memcg.pswpout = Some(40_000);
        memcg.pswpin = Some(29_000);
    }
    let checks: Vec<_> = swap_storm(&o).into_iter().map(|r| r.judge("s")).collect();
    assert_eq!(checks[0].source, "memcg memory.stat pswpout");
    assert_eq!(checks[0].verdict, Verdict::Pass);
    assert_eq!(checks[1].verdict, Verdict::Fail, "30000 vs 29000");

    // A swap-in fault is longer than its read: memtrace below the delay is a failure.
    let mut o = storm();
    if let Ok(d) = o.delays.as_mut() {
        d.swapin.total_ns = 90_000_001;
        d.freepages = None;
    }
    let failed = failed(swap_storm(&o));
    assert_eq!(
        failed,
        ["reclaim stalls", "reclaim stall time", "swap-in fault time"]
    );
}

fn oom() -> Observed {
    let report = fixture::report();
    let kill = &report.oom_kills[0];
    let v = &kill.victim;
    let killed = KilledProcess {
        pid: v.pid,
        comm: v.comm.clone(),
        total_vm_kb: v.total_vm_kb,
        anon_rss_kb: v.anon_rss_kb,
        file_rss_kb: v.file_rss_kb,
        shmem_rss_kb: v.shmem_rss_kb,
        pgtables_kb: v.pgtables_kb,
        oom_score_adj: v.oom_score_adj,
    };
    let path = kill.domain.cgroup.as_ref().map(|p| p.display().to_string());
    let pid = v.tgid;
    let mut o = observed(report);
    o.pid = pid;
    o.memcg = Some(MemcgObserved {
        path: path.expect("the fixture's kill is in a memcg"),
        oom_kills: Ok(1),
        pswpin: None,
        pswpout: None,
    });
    o.vmstat = Vmstat {
        before: "oom_kill 7\n".into(),
        after: "oom_kill 8\n".into(),
    };
    o.killed = Some(Ok(killed));
    o
}

#[test]
fn oom_rows_hold_the_kill_against_the_counters_and_the_kernel_log() {
    let o = oom();
    let rows = judged(memcg_oom(&o));
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.1 == Verdict::Pass), "{rows:#?}");

    let mut o = oom();
    if let Some(Ok(k)) = o.killed.as_mut() {
        k.anon_rss_kb += 4;
        k.comm = "other".into();
    }
    o.vmstat.after = "oom_kill 9\n".into();
    assert_eq!(
        failed(memcg_oom(&o)),
        ["OOM kills on the machine", "victim comm", "victim anon-rss"]
    );
}

#[test]
fn an_unread_kernel_log_fails_its_rows_with_the_reason() {
    let mut o = oom();
    o.killed = Some(Err("/dev/kmsg: Permission denied".into()));
    let rows = judged(memcg_oom(&o));
    let from_log: Vec<_> = rows.iter().skip(2).collect();
    assert!(
        from_log.iter().all(|r| r.1 == Verdict::Fail
            && r.2.as_deref() == Some("/dev/kmsg: Permission denied")),
        "{rows:#?}"
    );
}

#[test]
fn global_rows_sum_direct_reclaim_over_every_process() {
    let mut o = observed(fixture::report());
    o.memcg = None;
    // The fixture has one direct reclaim stall (postgres).
    // ... one direct compaction stall (redis), and 28 ms of kswapd CPU time.
    o.vmstat = Vmstat {
        before: "allocstall_dma32 2\nallocstall_normal 10\ncompact_stall 5\n".into(),
        after: "allocstall_dma32 2\nallocstall_normal 11\ncompact_stall 6\n".into(),
    };
    o.kswapd_cpu_ns = Some(28_000_000);
    o.delays = Ok(TaskDelays {
        freepages: Some(Delay {
            count: 4,
            total_ns: 230_000_000,
        }),
        ..TaskDelays::default()
    });
    let rows = judged(global_reclaim(&o));
    assert!(rows.iter().all(|r| r.1 == Verdict::Pass), "{rows:#?}");
    o.vmstat.after = "allocstall_dma32 3\nallocstall_normal 11\ncompact_stall 7\n".into();
    o.kswapd_cpu_ns = Some(30_000_000);
    assert_eq!(
        failed(global_reclaim(&o)),
        [
            "direct reclaim stalls (machine)",
            "direct compaction stalls (machine)",
            "kswapd CPU time"
        ]
    );
}

#[test]
fn pages_rows_hold_thp_faults_and_the_time_split_against_the_kernel() {
    let mut report = fixture::report();
    postgres(&mut report).classes.thp.latency.count = 32;
    let mut o = observed(report);
    o.vmstat = Vmstat {
        before: "thp_fault_alloc 100\n".into(),
        after: "thp_fault_alloc 132\n".into(),
    };
    // The fixture's postgres was blocked 1.41 ms and waited 0.16 ms in its faults; the
    // workload slept `asleep_ns` in its read and 0.1 ms in its writes.
    let time = |asleep_ns: u64| {
        format!(
            "{{\"wall_ns\":{},\"on_cpu_ns\":1000,\"run_delay_ns\":0,\"asleep_ns\":{asleep_ns}}}",
            asleep_ns + 1000
        )
    };
    let phases = |asleep_ns: u64| {
        format!(
            "{{\"thp\":{{\"pid\":100,\"chunks\":32,\"faults\":{{\"minflt\":0,\"majflt\":0}},\
             \"thp_fault_alloc\":32,\"time\":{}}},\
             \"sequential\":{{\"pid\":100,\"pages\":1,\
             \"faults\":{{\"minflt\":0,\"majflt\":0}},\"time\":{}}}}}\n",
            time(100_000),
            time(asleep_ns)
        )
    };
    o.output = phases(2_000_000);
    o.delays = Ok(TaskDelays {
        cpu: Delay {
            count: 9,
            total_ns: 200_000,
        },
        ..TaskDelays::default()
    });
    let rows = judged(pages(&o));
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.1 == Verdict::Pass), "{rows:#?}");
    // Blocked much shorter than the time asleep (by more than 2 % and 5 ms), or longer (by
    // more than 2 % and 1 ms): a failure either way.
    o.output = phases(10_000_000);
    o.vmstat.after = "thp_fault_alloc 133\n".into();
    assert_eq!(
        failed(pages(&o)),
        ["huge page (thp) faults", "faults' blocked time"]
    );
    o.vmstat.after = "thp_fault_alloc 132\n".into();
    o.output = phases(200_000);
    assert_eq!(failed(pages(&o)), ["faults' blocked time"]);
    // A workload that printed nothing usable fails its rows with the reason.
    o.output = "garbage".into();
    assert!(failed(pages(&o)).contains(&"faults' blocked time".to_string()));
}

/// docs/selfcheck.schema.json.
const SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/selfcheck.schema.json"
));

/// Every scenario's rows on the fixtures, judged as a run judges them, and the first scenario
/// once more as one that could not run, written by `table::write_json` and read back.
fn every_scenario_as_json() -> serde_json::Value {
    let scenarios = scenario::all(Options {
        global_reclaim: true,
    });
    let mut outcomes: Vec<ScenarioOutcome> = scenarios
        .iter()
        .map(|s| {
            let o = match s.name {
                "swap storm" => storm(),
                "memcg OOM" => oom(),
                _ => observed(fixture::report()),
            };
            outcome(s, Ok(o))
        })
        .collect();
    let not_run = Error::io("creating the sandbox", std::io::Error::other("no memcg"));
    outcomes.push(outcome(&scenarios[0], Err(not_run)));
    let run = SelfCheck {
        schema: SCHEMA_TAG.into(),
        memtrace_version: "0.1.0".into(),
        kernel: "6.18.0-test".into(),
        task_delayacct_was: "0".into(),
        duration_s: 4.3,
        scenarios: outcomes,
    };
    let json = fixture::render(|out| table::write_json(&run, out));
    serde_json::from_str(&json).expect("valid JSON")
}

#[test]
fn the_json_of_every_scenario_matches_the_schema() {
    let value = every_scenario_as_json();
    // It holds every unit, tolerance and verdict, and null figures and notes.
    let checks: Vec<&serde_json::Value> = value["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .flat_map(|s| s["checks"].as_array().expect("checks"))
        .collect();
    let seen = |f: fn(&serde_json::Value) -> Vec<String>| -> BTreeSet<String> {
        checks.iter().flat_map(|c| f(c)).collect()
    };
    let units = seen(|c| {
        [&c["memtrace"], &c["kernel"]]
            .iter()
            .map(|v| v["unit"].as_str().unwrap_or("null").to_string())
            .collect()
    });
    assert_eq!(units, set(&["count", "kb", "ns", "null", "pid", "text"]));
    let tolerances = seen(|c| match &c["tolerance"] {
        serde_json::Value::Object(t) => t.keys().cloned().collect(),
        t => vec![t.as_str().expect("a name").to_string()],
    });
    assert_eq!(
        tolerances,
        set(&["at_least", "at_most", "exact", "near", "percent", "wraps"])
    );
    let verdicts = seen(|c| vec![c["verdict"].as_str().expect("a verdict").to_string()]);
    assert_eq!(verdicts, set(&["fail", "pass"]));
    let errors = schema_errors(SCHEMA, &value);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_schema_refuses_an_unknown_field_a_missing_one_and_a_pass_without_figures() {
    let mut value = every_scenario_as_json();
    let storm = &mut value["scenarios"][1];
    assert_eq!(storm["name"], "swap storm");
    storm["checks"][0]["margin"] = 1.into();
    // A row passes only with both figures.
    storm["checks"][1]["kernel"] = serde_json::Value::Null;
    storm["checks"][2]["memtrace"]["unit"] = "bytes".into();
    storm.as_object_mut().expect("an object").remove("traced");
    let errors = schema_errors(SCHEMA, &value);
    let found = |needle: &str| errors.iter().any(|e| e.contains(needle));
    for needle in [
        "/scenarios/1/checks/0: Additional properties are not allowed ('margin'",
        "/scenarios/1/checks/1/kernel: null is not of type \"object\"",
        "/scenarios/1/checks/2/memtrace: {\"unit\":\"bytes\",",
        "/scenarios/1: \"traced\" is a required property",
    ] {
        assert!(found(needle), "{needle} not in:\n{}", errors.join("\n"));
    }
    assert_eq!(errors.len(), 4, "{}", errors.join("\n"));
}
