//! Maps shared by every hook: the ring buffer and the counters that make loss visible.
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
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

/// The ring-buffer flags for a submission: wake the reader only when a batch is waiting.
#[inline(always)]
pub fn wakeup_flags() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA.into()) >= global(&WAKEUP_BYTES) {
        BPF_RB_FORCE_WAKEUP.into()
    } else {
        BPF_RB_NO_WAKEUP.into()
    }
}
