//! The OOM block, rendered into a buffer.
use super::{KernelOomCounts, write, write_comparison};
use crate::{
    model::oom::{
        OomKill,
        tests::{candidate, kill_event, sample},
    },
    report::units::size,
};

fn rendered(kill: &OomKill) -> String {
    let mut out = Vec::new();
    write(kill, &mut out).expect("write to a Vec");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn the_block_tells_the_whole_story() {
    let mut s = sample(kill_event());
    s.candidates = Ok(vec![
        candidate(5000, 50, 0, 77),
        candidate(5001, 10, -1000, 77),
    ]);
    let text = rendered(&OomKill::from_sample(&s));
    for needle in [
        "== OOM kill at +4.00s in memcg /sys/fs/cgroup/memory/box [traced process] ==",
        "victim     pid 4242 (mt-workload) uid 0",
        "oom_score_adj 0",
        "trigger    the victim itself (pid 4242)",
        "kernel stack: mark_oom_victim < out_of_memory < try_charge_memcg",
        "domain     memcg: limit 48.0 MiB, usage 48.0 MiB, memsw limit 48.0 MiB (decided by stack; oom_lock, reclaim, at_limit agree)",
        "totalpages 12288",
        "badness    12937 points in a domain of 12288 pages = 1052/1000",
        "candidates 3 in the domain",
        "<- victim",
        "oom_score_adj=-1000",
        "constraint=CONSTRAINT_MEMCG oom_memcg=/box",
        "(agrees)",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let victim_line = text.lines().position(|l| l.contains("<- victim"));
    let other_line = text.lines().position(|l| l.contains(" 5000 "));
    assert!(victim_line < other_line, "highest points first:\n{text}");
}

#[test]
fn missing_pieces_are_said_not_hidden() {
    let mut s = sample(kill_event());
    s.stack = Err("/proc/kallsyms hides kernel addresses (kptr_restrict)".into());
    s.candidates = Err("iterator refused".into());
    s.kmsg = None;
    s.traced_victim = Some(false);
    let text = rendered(&OomKill::from_sample(&s));
    assert!(
        text.contains("kernel stack unavailable: /proc/kallsyms hides"),
        "{text}"
    );
    assert!(
        text.contains("candidates unavailable: iterator refused"),
        "{text}"
    );
    assert!(
        text.contains("(no oom-kill line read from /dev/kmsg)"),
        "{text}"
    );
    assert!(text.contains("[not a traced process]"), "{text}");
    assert!(text.contains("the OOM reaper was not needed"), "{text}");
}

#[test]
fn comparison_with_the_kernel_counters() {
    let kill = OomKill::from_sample(&sample(kill_event()));
    let counts = KernelOomCounts {
        memcg: "/sys/fs/cgroup/memory/box".into(),
        memcg_kills: 1,
        machine_kills: 1,
        expected_victim: 4242,
    };
    let mut out = Vec::new();
    write_comparison(&[kill], &counts, &mut out).expect("write");
    let text = String::from_utf8(out).expect("utf-8");
    let numbers = |label: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.contains(label)).unwrap_or_default();
        let rest = line.split_once(label).map_or("", |(_, r)| r);
        rest.split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        numbers("OOM kills in the sandbox memcg"),
        ["1", "1"],
        "{text}"
    );
    assert_eq!(numbers("OOM kills on the machine"), ["1", "1"], "{text}");
    assert_eq!(numbers("victim pid"), ["4242", "4242"], "{text}");
}

#[test]
fn sizes_for_humans() {
    assert_eq!(size(48 << 20), "48.0 MiB");
    assert_eq!(size(1536), "1.5 KiB");
    assert_eq!(size(17), "17 B");
    assert_eq!(size(3 << 30), "3.0 GiB");
}
