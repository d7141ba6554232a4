//! The floor `memtrace bench` holds memtrace against: the cheapest programs on memtrace's own
//! hooks, loaded only by `memtrace workload floor`, never by a recording. With `FLOOR_TIMED` 0
//! they are empty; with 1 the fault start takes a timestamp into a per-CPU slot and the fault's
//! PGFAULT event adds the time since to a per-CPU sum and clears the slot (a PGFAULT without a
//! start, a fault through get_user_pages, adds nothing): exact timing with no attribution,
//! what any per-fault latency tool must at least do. With 2 each side also learns which thread
//! it runs in, the least a tool that attributes faults must add: the start keeps the thread's
//! id beside the timestamp, and the end counts the fault only in that same thread, adding its
//! process id to a checksum (`FLOOR_SUM[2]`).
use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};

use crate::kernel::{VM_PGFAULT, current_task_btf, global, task_pid_tgid};

/// 0: empty programs; 1: time the faults; 2: time them and attribute them to their thread.
#[unsafe(no_mangle)]
static FLOOR_TIMED: u32 = 0;

/// The start of the fault in flight on this CPU (index 0) and, attributed, its thread (1).
#[map(name = "FLOOR_SLOT")]
static FLOOR_SLOT: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// Faults timed on this CPU (index 0), their time in ns (1) and, attributed, the sum of their
/// process ids (2).
#[map(name = "FLOOR_SUM")]
static FLOOR_SUM: PerCpuArray<u64> = PerCpuArray::with_max_entries(3, 0);

/// The attributing floor's `FLOOR_TIMED`.
const ATTRIBUTED: u32 = 2;

/// `exceptions:page_fault_user`.
#[btf_tracepoint(function = "page_fault_user")]
pub fn floor_fault_start(_ctx: BtfTracePointContext) -> i32 {
    let mode = global(&FLOOR_TIMED);
    if mode == 0 {
        return 0;
    }
    // The timed floor touches its one slot only: the attributed floor's thread slot is looked
    // up in that mode alone, so the yardstick carries nothing memtrace's programs don't.
    if mode == ATTRIBUTED
        && let Some(thread) = FLOOR_SLOT.get_ptr_mut(1)
    {
        // SAFETY: a per-CPU slot, touched by one program at a time on this CPU.
        unsafe { *thread = task_pid_tgid(current_task_btf()) & 0xffff_ffff };
    }
    if let Some(slot) = FLOOR_SLOT.get_ptr_mut(0) {
        // SAFETY: as above.
        unsafe { *slot = bpf_ktime_get_ns() };
    }
    0
}

/// `memcg:count_memcg_events(memcg, item, val)`.
#[btf_tracepoint(function = "count_memcg_events")]
pub fn floor_fault_end(ctx: BtfTracePointContext) -> i32 {
    let mode = global(&FLOOR_TIMED);
    if mode == 0 {
        return 0;
    }
    let item: i32 = ctx.arg(1);
    if item as u32 != global(&VM_PGFAULT) {
        return 0;
    }
    let (Some(slot), Some(count), Some(total)) = (
        FLOOR_SLOT.get_ptr_mut(0),
        FLOOR_SUM.get_ptr_mut(0),
        FLOOR_SUM.get_ptr_mut(1),
    ) else {
        return 0;
    };
    // SAFETY: per-CPU values, touched by one program at a time on this CPU.
    unsafe {
        if *slot == 0 {
            return 0;
        }
        if mode == ATTRIBUTED {
            let (Some(thread), Some(pids)) = (FLOOR_SLOT.get_ptr_mut(1), FLOOR_SUM.get_ptr_mut(2))
            else {
                return 0;
            };
            let pid_tgid = task_pid_tgid(current_task_btf());
            if pid_tgid & 0xffff_ffff != *thread {
                return 0;
            }
            *pids += pid_tgid >> 32;
        }
        *count += 1;
        *total += bpf_ktime_get_ns().saturating_sub(*slot);
        *slot = 0;
    }
    0
}

/// `sched:sched_switch`: an empty program, the least any hook on context switches costs.
#[btf_tracepoint(function = "sched_switch")]
pub fn floor_switch(_ctx: BtfTracePointContext) -> i32 {
    0
}
