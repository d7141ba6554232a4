//! Which domain an OOM kill happened in, from what a tracepoint can reach.
//!
//! The kernel's `struct oom_control` (constraint, memcg, totalpages) lives on the stack of
//! `out_of_memory()` and needs a function hook to read. What `oom:mark_victim` can reach is the
//! trigger (it runs in its context) and the victim's memcg chain, and these tell the path:
//!
//! 1. **stack**: the trigger's kernel stack runs through `try_charge_memcg` (a memcg charge
//!    over its limit) or through the page allocator's `__alloc_pages_slowpath` (a global,
//!    cpuset or mempolicy OOM), or `moom_callback` (SysRq-f, global). Decisive when readable.
//! 2. **oom_lock**: a memcg OOM locks the OOMing memcg's whole subtree (`mem_cgroup.oom_lock`,
//!    the v1 OOM bookkeeping that every CONFIG_MEMCG_V1 kernel runs, v2 hierarchies included)
//!    around `out_of_memory()`; the topmost locked level of the victim's chain is the OOMing
//!    memcg. (`under_oom` is no help: it is raised and dropped before the kill.)
//! 3. **reclaim**: the trigger's last reclaim before the kill: memcg reclaim precedes a memcg
//!    OOM in `try_charge_memcg`, direct reclaim precedes one from the page allocator.
//! 4. **at_limit**: a memcg of the victim's chain with (almost) no margin left under its limit.
//!
//! The first available signal decides; the others are reported as agreeing or not.
use memtrace_common::oom::{MemcgLevel, OomReclaim};

use super::badness::is_unlimited;

/// The kernel's `enum oom_constraint`, named as the report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// A memory cgroup hit its limit (CONSTRAINT_MEMCG).
    Memcg,
    /// The machine ran out of memory (CONSTRAINT_NONE).
    Global,
    /// The trigger's cpuset nodes ran out (CONSTRAINT_CPUSET).
    Cpuset,
    /// The trigger's MPOL_BIND nodes ran out (CONSTRAINT_MEMORY_POLICY).
    Mempolicy,
}

/// A fact that tells the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    Stack,
    OomLock,
    Reclaim,
    AtLimit,
    /// Only the innermost limited memcg was left to name (nothing else pointed at one).
    Limited,
}

impl Constraint {
    /// The name the report uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memcg => "memcg",
            Self::Global => "global",
            Self::Cpuset => "cpuset",
            Self::Mempolicy => "mempolicy",
        }
    }
}

impl Evidence {
    /// The name the report uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stack => "stack",
            Self::OomLock => "oom_lock",
            Self::Reclaim => "reclaim",
            Self::AtLimit => "at_limit",
            Self::Limited => "limited",
        }
    }
}

/// How the OOM killer was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomPath {
    Memcg,
    PageAllocator,
    Sysrq,
}

/// What the kill record and its context say.
#[derive(Clone, Copy, Debug)]
pub struct DomainFacts<'a> {
    /// Symbols of the trigger's kernel stack, innermost first, when readable.
    pub frames: Option<&'a [String]>,
    /// The trigger's last reclaim kind, when recent enough to belong to this OOM.
    pub reclaim: Option<OomReclaim>,
    /// Whether `oom_lock` was read (the kernel has it).
    pub oom_lock_known: bool,
    /// The victim's memcg chain, leaf first.
    pub levels: &'a [MemcgLevel],
    /// First word of the trigger's cpuset nodes, and its MPOL_BIND nodes if it has that policy.
    pub mems_allowed: u64,
    pub bind_nodes: Option<u64>,
    /// Nodes that have memory, as a mask.
    pub memory_nodes: u64,
}

/// The decision and what it rests on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub constraint: Constraint,
    /// For a memcg OOM: index into `levels` of the memcg that hit its limit.
    pub memcg_level: Option<usize>,
    /// The signal that decided the path, and how the memcg was found.
    pub decided_by: Option<Evidence>,
    pub memcg_found_by: Option<Evidence>,
    /// Other signals that agree or disagree with the decision.
    pub agreeing: Vec<Evidence>,
    pub disagreeing: Vec<Evidence>,
}

/// Stack frames that tell the path; the OOM killer's own frames above them are skipped.
const MEMCG_FRAMES: [&str; 5] = [
    "try_charge_memcg",
    "mem_cgroup_out_of_memory",
    "mem_cgroup_oom",
    "charge_memcg",
    "obj_cgroup_charge",
];
const ALLOC_FRAMES: [&str; 3] = [
    "__alloc_pages_may_oom",
    "__alloc_pages_slowpath",
    "__alloc_frozen_pages_noprof",
];
const SYSRQ_FRAMES: [&str; 2] = ["moom_callback", "sysrq_handle_moom"];

/// The margin (pages) under which a memcg counts as at its limit: an OOM is only invoked with
/// less than `1 << order` pages (order <= 3) left; the charge batch (64) covers what moved since.
const AT_LIMIT_PAGES: u64 = 64;

/// The path told by a stack, innermost frame first. `.cold`/`.isra.0` suffixes are ignored.
pub fn path_from_stack(frames: &[String]) -> Option<OomPath> {
    frames.iter().find_map(|frame| {
        let name = frame.split('.').next().unwrap_or(frame);
        if MEMCG_FRAMES.contains(&name) {
            Some(OomPath::Memcg)
        } else if ALLOC_FRAMES.contains(&name) {
            Some(OomPath::PageAllocator)
        } else if SYSRQ_FRAMES.contains(&name) {
            Some(OomPath::Sysrq)
        } else {
            None
        }
    })
}

/// Whether a memcg level has no room left under its memory (or memory+swap) limit.
pub fn at_limit(level: &MemcgLevel, v1: bool) -> bool {
    let tight =
        |usage: u64, max: u64| !is_unlimited(max) && max.saturating_sub(usage) <= AT_LIMIT_PAGES;
    tight(level.usage_pages, level.max_pages)
        || (v1 && tight(level.swap_usage_pages, level.swap_max_pages))
}

/// Decides the domain. `v1` is whether memsw accounting (cgroup v1) is in use.
pub fn decide(facts: &DomainFacts<'_>, v1: bool) -> Domain {
    let levels = facts.levels;
    let signals = [
        (Evidence::Stack, facts.frames.and_then(path_from_stack)),
        (
            Evidence::OomLock,
            facts.oom_lock_known.then(|| {
                if levels.iter().any(|l| l.oom_lock > 0) {
                    OomPath::Memcg
                } else {
                    OomPath::PageAllocator
                }
            }),
        ),
        (
            Evidence::Reclaim,
            match facts.reclaim {
                Some(OomReclaim::Memcg) => Some(OomPath::Memcg),
                Some(OomReclaim::Direct) => Some(OomPath::PageAllocator),
                Some(OomReclaim::None) | None => None,
            },
        ),
        (
            Evidence::AtLimit,
            Some(if levels.iter().any(|l| at_limit(l, v1)) {
                OomPath::Memcg
            } else {
                OomPath::PageAllocator
            }),
        ),
    ];
    let (decided_by, path) = signals
        .iter()
        .find_map(|(evidence, path)| path.map(|p| (*evidence, p)))
        .unwrap_or((Evidence::AtLimit, OomPath::PageAllocator));
    let is_memcg = |p: OomPath| p == OomPath::Memcg;
    let (mut agreeing, mut disagreeing) = (Vec::new(), Vec::new());
    for (evidence, other) in signals.iter().filter(|(e, _)| *e != decided_by) {
        match other {
            Some(other) if is_memcg(*other) == is_memcg(path) => agreeing.push(*evidence),
            Some(_) => disagreeing.push(*evidence),
            None => {}
        }
    }
    let (constraint, memcg_level, memcg_found_by) = match path {
        OomPath::Memcg => {
            let (level, found_by) = limiting_memcg(facts, v1);
            (Constraint::Memcg, level, found_by)
        }
        OomPath::Sysrq => (Constraint::Global, None, None),
        OomPath::PageAllocator => (numa_constraint(facts), None, None),
    };
    Domain {
        constraint,
        memcg_level,
        decided_by: Some(decided_by),
        memcg_found_by,
        agreeing,
        disagreeing,
    }
}

/// Which level of the victim's chain hit its limit.
fn limiting_memcg(facts: &DomainFacts<'_>, v1: bool) -> (Option<usize>, Option<Evidence>) {
    let levels = facts.levels;
    if facts.oom_lock_known
        && let Some(top) = levels.iter().rposition(|l| l.oom_lock > 0)
    {
        return (Some(top), Some(Evidence::OomLock));
    }
    // The charge fails at the innermost counter over its limit (page_counter_try_charge walks up).
    if let Some(inner) = levels.iter().position(|l| at_limit(l, v1)) {
        return (Some(inner), Some(Evidence::AtLimit));
    }
    let limited = levels.iter().position(|l| !is_unlimited(l.max_pages));
    (limited, limited.map(|_| Evidence::Limited))
}

/// Global unless the trigger's MPOL_BIND nodes or cpuset nodes leave out some memory node
/// (`constrained_alloc()`; __GFP_THISNODE allocations are global there too, unseen here).
fn numa_constraint(facts: &DomainFacts<'_>) -> Constraint {
    let all = facts.memory_nodes;
    let covers = |mask: u64| mask & all == all;
    match facts.bind_nodes {
        Some(nodes) if all != 0 && !covers(nodes) => Constraint::Mempolicy,
        _ if all != 0 && facts.mems_allowed != 0 && !covers(facts.mems_allowed) => {
            Constraint::Cpuset
        }
        _ => Constraint::Global,
    }
}
