//! The domain decision: which signal decides, which agree, which memcg, which NUMA constraint.
use memtrace_common::oom::{MemcgLevel, OomReclaim};

use super::{LIMIT_PAGES, NO_LIMIT, level};
use crate::model::oom::domain::{
    Constraint, DomainFacts, Evidence, OomPath, at_limit, decide, path_from_stack,
};

fn frames(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn facts<'a>(frames: Option<&'a [String]>, levels: &'a [MemcgLevel]) -> DomainFacts<'a> {
    DomainFacts {
        frames,
        reclaim: None,
        oom_lock_known: true,
        levels,
        mems_allowed: 1,
        bind_nodes: None,
        memory_nodes: 1,
    }
}

#[test]
fn stacks_tell_the_path() {
    let memcg = frames(&[
        "mark_oom_victim",
        "out_of_memory",
        "try_charge_memcg",
        "__mem_cgroup_charge",
    ]);
    assert_eq!(path_from_stack(&memcg), Some(OomPath::Memcg));
    let global = frames(&[
        "out_of_memory",
        "__alloc_pages_slowpath.constprop.0",
        "alloc_pages_mpol",
    ]);
    assert_eq!(path_from_stack(&global), Some(OomPath::PageAllocator));
    assert_eq!(
        path_from_stack(&frames(&["out_of_memory", "moom_callback"])),
        Some(OomPath::Sysrq)
    );
    assert_eq!(
        path_from_stack(&frames(&["out_of_memory", "kthread"])),
        None
    );
}

#[test]
fn a_memcg_oom_names_the_locked_memcg() {
    // Victim in a child of the OOMing memcg: both are locked, the topmost locked one OOMed.
    let levels = [
        level(9, 100, NO_LIMIT, 1),
        level(77, LIMIT_PAGES, LIMIT_PAGES, 1),
        level(1, 9, NO_LIMIT, 0),
    ];
    let stack = frames(&["out_of_memory", "try_charge_memcg"]);
    let mut f = facts(Some(&stack), &levels);
    f.reclaim = Some(OomReclaim::Memcg);
    let d = decide(&f, true);
    assert_eq!(d.constraint, Constraint::Memcg);
    assert_eq!(
        (d.memcg_level, d.memcg_found_by),
        (Some(1), Some(Evidence::OomLock))
    );
    assert_eq!(d.decided_by, Some(Evidence::Stack));
    assert_eq!(
        d.agreeing,
        vec![Evidence::OomLock, Evidence::Reclaim, Evidence::AtLimit]
    );
    assert!(d.disagreeing.is_empty());
}

#[test]
fn without_stack_or_lock_the_reclaim_and_the_limit_decide() {
    let levels = [
        level(77, LIMIT_PAGES - 3, LIMIT_PAGES, 0),
        level(1, 9, NO_LIMIT, 0),
    ];
    let mut f = facts(None, &levels);
    f.oom_lock_known = false;
    f.reclaim = Some(OomReclaim::Memcg);
    let d = decide(&f, true);
    assert_eq!(
        (d.constraint, d.decided_by),
        (Constraint::Memcg, Some(Evidence::Reclaim))
    );
    assert_eq!(
        (d.memcg_level, d.memcg_found_by),
        (Some(0), Some(Evidence::AtLimit))
    );
    // Nothing but the limits: still a memcg, found by being at its limit.
    f.reclaim = None;
    assert_eq!(decide(&f, true).decided_by, Some(Evidence::AtLimit));
}

#[test]
fn memsw_counts_on_v1_only() {
    let mut l = level(5, 100, 1000, 0);
    l.swap_usage_pages = 1990;
    l.swap_max_pages = 2000;
    assert!(at_limit(&l, true));
    assert!(!at_limit(&l, false));
    assert!(!at_limit(&level(5, 10, NO_LIMIT, 0), true));
}

#[test]
fn a_global_oom_and_its_disagreements() {
    let levels = [level(77, 100, LIMIT_PAGES, 0), level(1, 9, NO_LIMIT, 0)];
    let stack = frames(&[
        "out_of_memory",
        "__alloc_pages_may_oom",
        "__alloc_pages_slowpath",
    ]);
    let mut f = facts(Some(&stack), &levels);
    // A stale memcg reclaim mark disagrees; the stack wins and the report says so.
    f.reclaim = Some(OomReclaim::Memcg);
    let d = decide(&f, true);
    assert_eq!((d.constraint, d.memcg_level), (Constraint::Global, None));
    assert_eq!(d.agreeing, vec![Evidence::OomLock, Evidence::AtLimit]);
    assert_eq!(d.disagreeing, vec![Evidence::Reclaim]);
}

#[test]
fn cpuset_and_mempolicy_constraints() {
    let levels = [level(1, 9, NO_LIMIT, 0)];
    let stack = frames(&["__alloc_pages_slowpath"]);
    let mut f = facts(Some(&stack), &levels);
    f.memory_nodes = 0b11;
    f.mems_allowed = 0b11;
    assert_eq!(decide(&f, true).constraint, Constraint::Global);
    f.mems_allowed = 0b01;
    assert_eq!(decide(&f, true).constraint, Constraint::Cpuset);
    f.bind_nodes = Some(0b10);
    assert_eq!(decide(&f, true).constraint, Constraint::Mempolicy);
    f.bind_nodes = Some(0b11);
    f.mems_allowed = 0b11;
    assert_eq!(decide(&f, true).constraint, Constraint::Global);
    // SysRq-f is global whatever the limits.
    let sysrq = frames(&["out_of_memory", "moom_callback"]);
    assert_eq!(
        decide(&facts(Some(&sysrq), &levels), true).constraint,
        Constraint::Global
    );
}
