//! Maps shared by every hook: the ring buffer and the counters that make loss visible.
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{PerCpuArray, RingBuf},
};
use memtrace_common::{EVENT_KIND_SLOTS, stat, vm_count};

use crate::kernel::global;

/// Every record for userspace. Userspace sets the size at load time.
#[map(name = "EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Records that could not be reserved, per kind.
#[map(name = "LOST")]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(EVENT_KIND_SLOTS, 0);

/// Kernel-side diagnostics, indexed by `memtrace_common::stat`.
#[map(name = "STATS")]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::SLOTS, 0);

/// Machine events counted rather than streamed, indexed by `memtrace_common::vm_count`.
#[map(name = "VM_COUNTS")]
pub static VM_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(vm_count::SLOTS, 0);

/// Userspace is woken only once this many bytes wait (it also drains on its own timer), so a
/// busy system pays for one wake-up per batch rather than one per record.
#[unsafe(no_mangle)]
pub static WAKEUP_BYTES: u64 = 256 << 10;

/// While that much waits, a CPU wakes userspace at most once in this many ns. A wake-up costs
/// the submitting CPU an interrupt and the wake of the reader (tens of µs in this VM): without
/// the limit, a reader that falls behind (stopped, starved of CPU) had every record force one,
/// +125 ns a fault when it was stopped; with 1 ms, +30 ns. A reader that is awake drains until
/// the ring is empty, so a wake-up only matters to one asleep with data waiting: it waits at
/// most this long more (at 3 M faults/s, 240 KB more of a ring of at least 1 MiB).
#[unsafe(no_mangle)]
pub static WAKEUP_EVERY_NS: u64 = 10_000_000;

/// When this CPU last forced a wake-up.
#[map(name = "LAST_WAKEUP")]
static LAST_WAKEUP: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn bump(map: &PerCpuArray<u64>, index: u32) {
    if let Some(counter) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *counter += 1 };
    }
}

/// Adds `n` to a per-CPU counter.
#[inline(always)]
pub fn bump_by(map: &PerCpuArray<u64>, index: u32, n: u64) {
    if let Some(counter) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *counter += n };
    }
}

/// The ring-buffer flags for a submission: wake the reader only when a batch is waiting, and
/// not again from this CPU within `WAKEUP_EVERY_NS` while it is still waiting.
#[inline(always)]
pub fn wakeup_flags() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA.into()) < global(&WAKEUP_BYTES) {
        return BPF_RB_NO_WAKEUP.into();
    }
    let Some(last) = LAST_WAKEUP.get_ptr_mut(0) else {
        return BPF_RB_FORCE_WAKEUP.into();
    };
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: a per-CPU slot, touched only by programs on this CPU, one at a time.
    let last = unsafe { &mut *last };
    if now.wrapping_sub(*last) < global(&WAKEUP_EVERY_NS) {
        return BPF_RB_NO_WAKEUP.into();
    }
    *last = now;
    BPF_RB_FORCE_WAKEUP.into()
}
