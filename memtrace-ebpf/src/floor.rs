//! The floor `memtrace bench` holds memtrace against: the cheapest programs on memtrace's own
//! hooks, loaded only by `memtrace workload floor`, never by a recording. With `FLOOR_TIMED` 0
//! they are empty; with 1 the fault start takes a timestamp into a per-CPU slot and the fault's
//! PGFAULT event adds the time since to a per-CPU sum and clears the slot (a PGFAULT without a
//! start, a fault through get_user_pages, adds nothing): exact timing with no attribution,
//! what any per-fault latency tool must at least do.
use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};

use crate::kernel::{VM_PGFAULT, global};

/// 1: time the faults; 0: empty programs.
#[unsafe(no_mangle)]
static FLOOR_TIMED: u32 = 0;

/// The start of the fault in flight on this CPU.
#[map(name = "FLOOR_SLOT")]
static FLOOR_SLOT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Faults timed on this CPU (index 0) and their time in ns (index 1).
#[map(name = "FLOOR_SUM")]
static FLOOR_SUM: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// `exceptions:page_fault_user`.
#[btf_tracepoint(function = "page_fault_user")]
pub fn floor_fault_start(_ctx: BtfTracePointContext) -> i32 {
    if global(&FLOOR_TIMED) != 0
        && let Some(slot) = FLOOR_SLOT.get_ptr_mut(0)
    {
        // SAFETY: a per-CPU slot, touched by one program at a time on this CPU.
        unsafe { *slot = bpf_ktime_get_ns() };
    }
    0
}

/// `memcg:count_memcg_events(memcg, item, val)`.
#[btf_tracepoint(function = "count_memcg_events")]
pub fn floor_fault_end(ctx: BtfTracePointContext) -> i32 {
    if global(&FLOOR_TIMED) == 0 {
        return 0;
    }
    let item: i32 = ctx.arg(1);
    if item as u32 != global(&VM_PGFAULT) {
        return 0;
    }
    if let (Some(slot), Some(count), Some(total)) = (
        FLOOR_SLOT.get_ptr_mut(0),
        FLOOR_SUM.get_ptr_mut(0),
        FLOOR_SUM.get_ptr_mut(1),
    ) {
        // SAFETY: per-CPU values, touched by one program at a time on this CPU.
        unsafe {
            if *slot != 0 {
                *count += 1;
                *total += bpf_ktime_get_ns().saturating_sub(*slot);
                *slot = 0;
            }
        }
    }
    0
}

/// `sched:sched_switch`: an empty program, the least any hook on context switches costs.
#[btf_tracepoint(function = "sched_switch")]
pub fn floor_switch(_ctx: BtfTracePointContext) -> i32 {
    0
}
