//! Reading a task's memory and memory cgroup the way the kernel does, through offsets from BTF
//! (aya has no CO-RE). Shared by the OOM records, the OOM candidates and the memory iterator.
use memtrace_common::{
    COMM_LEN,
    oom::{MemcgLevel, mm_counter},
};

use crate::kernel::{off, read_at};

/// The task's memory-controller css (`task->cgroups->subsys[memory_cgrp_id]`), 0 if unknown.
#[inline(always)]
pub fn memcg_css(task: u64) -> u64 {
    let css_set: u64 = read_at(task, off!(task_cgroups)).unwrap_or(0);
    read_at(css_set, off!(css_set_memory)).unwrap_or(0)
}

/// The kernfs id of a css's cgroup: the inode of its directory.
#[inline(always)]
pub fn css_id(css: u64) -> u64 {
    let cgroup: u64 = read_at(css, off!(css_cgroup)).unwrap_or(0);
    let kn: u64 = read_at(cgroup, off!(cgroup_kn)).unwrap_or(0);
    read_at(kn, off!(kernfs_node_id)).unwrap_or(0)
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
    level.usage_pages = read_at(memcg, memory + usage).unwrap_or(0);
    level.max_pages = read_at(memcg, memory + max).unwrap_or(0);
    level.swap_usage_pages = read_at(memcg, swap + usage).unwrap_or(0);
    level.swap_max_pages = read_at(memcg, swap + max).unwrap_or(0);
    level.oom_events = read_at(memcg, off!(memcg_oom_events)).unwrap_or(0);
    let oom_lock = off!(memcg_oom_lock);
    if oom_lock != u32::MAX {
        level.oom_lock = u32::from(read_at::<u8>(memcg, oom_lock).unwrap_or(0));
    }
    level.swappiness = read_at::<i32>(memcg, off!(memcg_swappiness)).unwrap_or(0) as u32;
    level
}

/// The task's `comm`.
#[inline(always)]
pub fn read_comm(task: u64) -> [u8; COMM_LEN] {
    read_at(task, off!(task_comm)).unwrap_or([0; COMM_LEN])
}

/// `mm->rss_stat[]` as `get_mm_counter()` reads it (the per-CPU counters' central count):
/// file, anon, swap entries, shmem, in pages.
#[inline(always)]
pub fn read_mm_counters(mm: u64) -> [i64; 4] {
    let base = off!(mm_rss_count);
    let stride = off!(mm_rss_stride);
    let counter = |index: u32| read_at::<i64>(mm, base + index * stride).unwrap_or(0);
    [
        counter(mm_counter::FILE_PAGES),
        counter(mm_counter::ANON_PAGES),
        counter(mm_counter::SWAP_ENTS),
        counter(mm_counter::SHMEM_PAGES),
    ]
}
