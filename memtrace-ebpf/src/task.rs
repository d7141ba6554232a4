//! Reading a task's memory and memory cgroup the way the kernel does, through offsets from BTF
//! (aya has no CO-RE). Shared by the OOM records, the OOM candidates and the memory iterator.
use memtrace_common::{
    COMM_LEN,
    oom::{MemcgLevel, mm_counter},
};

use crate::kernel::{off, peek};

/// The task's memory-controller css (`task->cgroups->subsys[memory_cgrp_id]`), 0 if unknown.
#[inline(always)]
pub fn memcg_css(task: u64) -> u64 {
    let css_set: u64 = peek(task, off!(task_cgroups));
    peek(css_set, off!(css_set_memory))
}

/// The kernfs id of a css's cgroup: the inode of its directory.
#[inline(always)]
pub fn css_id(css: u64) -> u64 {
    let cgroup: u64 = peek(css, off!(css_cgroup));
    let kn: u64 = peek(cgroup, off!(cgroup_kn));
    peek(kn, off!(kernfs_node_id))
}

/// One memcg: its id, and with `counters` its page counters and OOM bookkeeping.
#[inline(always)]
pub fn memcg_level(css: u64, counters: bool) -> MemcgLevel {
    let mut level = MemcgLevel {
        id: css_id(css),
        ..MemcgLevel::default()
    };
    if !counters || css == 0 {
        return level;
    }
    let memcg = css - u64::from(off!(memcg_css));
    let memory = off!(memcg_memory);
    let swap = off!(memcg_swap);
    let usage = off!(counter_usage);
    let max = off!(counter_max);
    level.usage_pages = peek(memcg, memory + usage);
    level.max_pages = peek(memcg, memory + max);
    level.swap_usage_pages = peek(memcg, swap + usage);
    level.swap_max_pages = peek(memcg, swap + max);
    level.oom_events = peek(memcg, off!(memcg_oom_events));
    let oom_lock = off!(memcg_oom_lock);
    if oom_lock != u32::MAX {
        level.oom_lock = u32::from(peek::<u8>(memcg, oom_lock));
    }
    level.swappiness = peek::<i32>(memcg, off!(memcg_swappiness)) as u32;
    level
}

/// The task's `comm`.
#[inline(always)]
pub fn read_comm(task: u64) -> [u8; COMM_LEN] {
    peek(task, off!(task_comm))
}

/// `mm->rss_stat[]` as `get_mm_counter()` reads it (the per-CPU counters' central count):
/// file, anon, swap entries, shmem, in pages.
#[inline(always)]
pub fn read_mm_counters(mm: u64) -> [i64; 4] {
    let base = off!(mm_rss_count);
    let stride = off!(mm_rss_stride);
    let counter = |index: u32| peek::<i64>(mm, base + index * stride);
    [
        counter(mm_counter::FILE_PAGES),
        counter(mm_counter::ANON_PAGES),
        counter(mm_counter::SWAP_ENTS),
        counter(mm_counter::SHMEM_PAGES),
    ]
}
