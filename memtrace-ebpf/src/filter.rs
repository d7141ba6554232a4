//! Which tasks are traced, decided in the kernel so untraced tasks cost one check.
use aya_ebpf::{
    cty::c_int,
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_pid_tgid, bpf_get_current_task},
    macros::map,
    maps::HashMap,
};
use memtrace_common::{MAX_FILTER_PIDS, filter_mode, stat};

use crate::{
    kernel::{global, off, read_at},
    maps::{STATS, bump},
};

/// A `memtrace_common::filter_mode` value.
#[unsafe(no_mangle)]
static FILTER_MODE: u32 = filter_mode::ALL;
/// Non-zero: processes forked by a traced process are traced too (`--children`).
#[unsafe(no_mangle)]
static FOLLOW_CHILDREN: u32 = 0;
/// The traced cgroup's id (its directory's inode) and depth below its hierarchy's root.
#[unsafe(no_mangle)]
static CGROUP_ID: u64 = 0;
#[unsafe(no_mangle)]
static CGROUP_LEVEL: u32 = 0;

/// Thread groups traced in `filter_mode::PIDS`.
#[map(name = "PIDS")]
static PIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_FILTER_PIDS, 0);

/// Whether the current task is traced.
#[inline(always)]
pub fn current_wanted() -> bool {
    match global(&FILTER_MODE) {
        filter_mode::ALL => true,
        filter_mode::PIDS => {
            let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
            // SAFETY: the value is only tested for presence.
            unsafe { PIDS.get(&tgid) }.is_some()
        }
        filter_mode::CGROUP_V2 => {
            let level = global(&CGROUP_LEVEL) as c_int;
            // SAFETY: plain helper call.
            let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
            id == global(&CGROUP_ID)
        }
        filter_mode::MEMCG_V1 => {
            // SAFETY: plain helper call; the pointer is only read through bpf_probe_read_kernel.
            let task = unsafe { bpf_get_current_task() };
            in_memcg(task).unwrap_or(false)
        }
        _ => false,
    }
}

/// Whether a task met outside its own context (the task iterator) is traced. For a cgroup
/// filter the task's memory cgroup must be the traced cgroup or below it: on cgroup v2 that is
/// its own cgroup when the memory controller is on there, as it is in a container.
#[inline(always)]
pub fn task_wanted(task: u64, tgid: u32) -> bool {
    match global(&FILTER_MODE) {
        filter_mode::ALL => true,
        // SAFETY: presence test only.
        filter_mode::PIDS => unsafe { PIDS.get(&tgid) }.is_some(),
        filter_mode::CGROUP_V2 | filter_mode::MEMCG_V1 => in_memcg(task).unwrap_or(false),
        _ => false,
    }
}

/// Walks task->cgroups->subsys[memory]->cgroup->ancestors[level]->kn->id: whether the task's
/// memory cgroup is the traced one or below it.
#[inline(always)]
fn in_memcg(task: u64) -> Option<bool> {
    let css_set: u64 = read_at(task, off!(task_cgroups))?;
    let css: u64 = read_at(css_set, off!(css_set_memory))?;
    let cgroup: u64 = read_at(css, off!(css_cgroup))?;
    let level: i32 = read_at(cgroup, off!(cgroup_level))?;
    let target_level = global(&CGROUP_LEVEL);
    if level < 0 || (level as u32) < target_level || target_level > 64 {
        return Some(false);
    }
    let ancestor: u64 = read_at(cgroup, off!(cgroup_ancestors) + target_level * 8)?;
    let kn: u64 = read_at(ancestor, off!(cgroup_kn))?;
    let id: u64 = read_at(kn, off!(kernfs_node_id))?;
    Some(id == global(&CGROUP_ID))
}

/// A new process forked by the current (parent) task: with `--children`, a traced parent's
/// child is added to the filter, traced from its first instruction. Returns whether the child
/// is traced.
#[inline(always)]
pub fn on_fork(parent_tgid: u32, child_tgid: u32) -> bool {
    if global(&FILTER_MODE) != filter_mode::PIDS {
        // A child inherits its parent's cgroup: traced as its parent is.
        return current_wanted();
    }
    // SAFETY: presence test only.
    if unsafe { PIDS.get(&parent_tgid) }.is_none() || global(&FOLLOW_CHILDREN) == 0 {
        return false;
    }
    if PIDS.insert(&child_tgid, &1, 0).is_ok() {
        bump(&STATS, stat::CHILDREN_ADDED);
        true
    } else {
        bump(&STATS, stat::CHILDREN_DROPPED);
        false
    }
}

/// A traced process ended: its pid leaves the filter, so the map only holds live processes
/// (and a later process with the same pid is not traced by mistake).
#[inline(always)]
pub fn on_exit(tgid: u32) {
    if global(&FILTER_MODE) == filter_mode::PIDS {
        let _ = PIDS.remove(&tgid);
    }
}
