//! Memory growth. `process_memory` is a task iterator userspace reads at every interval's
//! close: one record per traced process with its memory as `get_mm_counter()` reads it and its
//! memory cgroup's usage and limit, from one pass over the kernel's task list (no /proc file per
//! pid).
//!
//! `fault_stack` (attached only with `--stacks`) runs on every page allocation and counts the
//! pages a traced thread's fault in flight allocates for user memory, under the fault's user
//! and kernel stacks: a stack map and a count map, no record per fault.
use core::ffi::c_void;

use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_pid_tgid, bpf_seq_write},
    macros::{btf_tracepoint, map},
    maps::{PerCpuArray, PerCpuHashMap, StackTrace},
    programs::{BtfTracePointContext, tracing::StackIdContext as _},
};
use memtrace_common::growth::{MAX_FAULT_STACKS, MAX_STACK_KEYS, MemoryRecord, StackKey};

use crate::{
    faults::in_flight,
    filter::task_wanted,
    kernel::{IterProcess, global, iter_process, off, peek},
    task::{memcg_css, memcg_level, read_comm, read_mm_counters},
};

/// Take one allocation's stacks in this many (`--stacks-every`); its pages count that many
/// times.
#[unsafe(no_mangle)]
static STACKS_EVERY: u32 = 1;
/// `__GFP_MOVABLE`: user memory (anonymous and page-cache pages) is movable; the fault's page
/// tables and other kernel allocations are not.
#[unsafe(no_mangle)]
static GFP_MOVABLE: u32 = 0x08;

/// User and kernel stacks by id.
#[map(name = "FAULT_STACKS")]
static FAULT_STACKS: StackTrace = StackTrace::with_max_entries(MAX_FAULT_STACKS, 0);

/// Pages brought in under each (process, user stack, kernel stack), per CPU.
#[map(name = "FAULT_STACK_PAGES")]
static FAULT_STACK_PAGES: PerCpuHashMap<StackKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_STACK_KEYS, 0);

/// Allocations seen on this CPU, for `STACKS_EVERY`.
#[map(name = "STACK_SAMPLE")]
static STACK_SAMPLE: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Frames of the kernel stack that are the tracing machinery (the program and the tracepoint
/// runner), not the kernel's path to the allocation.
const KERNEL_SKIP: u64 = 2;

/// `kmem:mm_page_alloc(page, order, gfp_flags, migratetype)`, in the allocating task.
#[btf_tracepoint(function = "mm_page_alloc")]
pub fn fault_stack(ctx: BtfTracePointContext) -> i32 {
    let gfp: u32 = ctx.arg(2);
    if gfp & global(&GFP_MOVABLE) == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if in_flight(pid_tgid as u32).is_none() {
        return 0;
    }
    let every = global(&STACKS_EVERY).max(1);
    if every > 1 {
        let Some(seen) = STACK_SAMPLE.get_ptr_mut(0) else {
            return 0;
        };
        // SAFETY: a per-CPU slot, touched only by programs on this CPU, one at a time.
        let seen = unsafe { &mut *seen };
        *seen = seen.wrapping_add(1);
        if *seen % every != 0 {
            return 0;
        }
    }
    let order: u32 = ctx.arg(1);
    let pages = (1u64 << (order & 15)) * u64::from(every);
    let stack = |flags: u64| match ctx.get_stackid(&FAULT_STACKS, flags) {
        Ok(id) => id as i32,
        Err(errno) => errno.min(-1),
    };
    let key = StackKey {
        tgid: (pid_tgid >> 32) as u32,
        user_stack: stack(u64::from(BPF_F_USER_STACK)),
        kernel_stack: stack(KERNEL_SKIP),
        _pad: 0,
    };
    match FAULT_STACK_PAGES.get_ptr_mut(&key) {
        // SAFETY: this CPU's value, only this CPU writes it while the program runs.
        Some(count) => unsafe { *count += pages },
        None => {
            // Full: the pages go uncounted; userspace compares the keys with the map's size.
            let _ = FAULT_STACK_PAGES.insert(&key, &pages, 0);
        }
    }
    0
}

/// Called once per task, and once more with a null task at the end.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub fn process_memory(ctx: *mut c_void) -> i32 {
    let Some(IterProcess {
        seq,
        task,
        tgid,
        mm,
        ..
    }) = iter_process(ctx)
    else {
        return 0;
    };
    if !task_wanted(task, tgid) {
        return 0;
    }
    let [file, anon, swap, shmem] = read_mm_counters(mm);
    let memcg = memcg_level(memcg_css(task), true);
    let record = MemoryRecord {
        tgid,
        _pad: 0,
        start_ns: peek(task, off!(task_start_time)),
        rss_file_pages: file,
        rss_anon_pages: anon,
        swap_entries: swap,
        rss_shmem_pages: shmem,
        memcg_id: memcg.id,
        memcg_usage_pages: memcg.usage_pages,
        memcg_max_pages: memcg.max_pages,
        comm: read_comm(task),
    };
    // SAFETY: `seq` came from the iterator's meta; the record lives on this stack frame.
    unsafe {
        bpf_seq_write(
            seq.cast(),
            (&raw const record).cast(),
            size_of::<MemoryRecord>() as u32,
        )
    };
    0
}
