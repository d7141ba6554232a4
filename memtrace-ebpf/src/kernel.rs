//! Kernel facts resolved from BTF by userspace at start-up and handed in as read-only globals
//! (aya has no CO-RE relocations, and enum values depend on the kernel's configuration).
use memtrace_common::offsets::KernelOffsets;

/// Reads a global that userspace set before load. `read_volatile` stops the compiler from
/// folding the placeholder value in.
#[inline(always)]
pub fn global<T: Copy>(value: &'static T) -> T {
    // SAFETY: the reference is valid; the volatile read only prevents constant folding.
    unsafe { core::ptr::read_volatile(value) }
}

/// `enum vm_event_item` values.
#[unsafe(no_mangle)]
pub static VM_PGFAULT: u32 = u32::MAX;
#[unsafe(no_mangle)]
pub static VM_PGMAJFAULT: u32 = u32::MAX;
#[unsafe(no_mangle)]
pub static VM_PSWPIN: u32 = u32::MAX;
#[unsafe(no_mangle)]
pub static VM_ZSWPIN: u32 = u32::MAX;
#[unsafe(no_mangle)]
pub static VM_PSWPOUT: u32 = u32::MAX;
/// `THP_FAULT_ALLOC` (`u32::MAX`, matching nothing, without transparent huge pages).
#[unsafe(no_mangle)]
pub static VM_THP_FAULT_ALLOC: u32 = u32::MAX;

/// Every struct member offset the programs read, set by userspace from BTF before load.
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = KernelOffsets::UNSET;

/// Reads one offset of `OFFSETS` (volatile, so the placeholder is not folded in).
macro_rules! off {
    ($field:ident) => {
        // SAFETY: a valid static; the volatile read only prevents constant folding.
        unsafe { core::ptr::read_volatile(&raw const $crate::kernel::OFFSETS.$field) }
    };
}
pub(crate) use off;

/// Reads a `T` at `base + offset` from kernel memory; `None` on a fault or a null base.
#[inline(always)]
pub fn read_at<T>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}

/// The current task's memory cgroup, as its `struct cgroup_subsys_state *`
/// (`task->cgroups->subsys[memory_cgrp_id]`, cgroup v1 and v2 alike); 0 when unreadable.
#[inline(always)]
pub fn current_memcg_css() -> u64 {
    // SAFETY: plain helper call; the pointer is only read through bpf_probe_read_kernel.
    let task = unsafe { aya_ebpf::helpers::bpf_get_current_task() };
    read_at::<u64>(task, off!(task_cgroups))
        .and_then(|set| read_at::<u64>(set, off!(css_set_memory)))
        .unwrap_or(0)
}

/// The inode of a memory cgroup's directory, from its css (`css->cgroup->kn->id`): the id
/// userspace names cgroups by; 0 when unreadable.
#[inline(always)]
pub fn css_memcg_id(css: u64) -> u64 {
    read_at::<u64>(css, off!(css_cgroup))
        .and_then(|cgroup| read_at::<u64>(cgroup, off!(cgroup_kn)))
        .and_then(|kn| read_at::<u64>(kn, off!(kernfs_node_id)))
        .unwrap_or(0)
}
