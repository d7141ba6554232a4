//! Kernel facts resolved from BTF by userspace at start-up and handed in as read-only globals
//! (aya has no CO-RE relocations, and enum values depend on the kernel's configuration).

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

/// `offsetof(struct task_struct, tgid)`.
#[unsafe(no_mangle)]
pub static OFF_TASK_TGID: u32 = 0;
/// `offsetof(struct task_struct, pid)`.
#[unsafe(no_mangle)]
pub static OFF_TASK_PID: u32 = 0;
/// `offsetof(struct task_struct, flags)`.
#[unsafe(no_mangle)]
pub static OFF_TASK_FLAGS: u32 = 0;
/// `offsetof(struct mem_cgroup, css)`.
#[unsafe(no_mangle)]
pub static OFF_MEMCG_CSS: u32 = 0;
/// `offsetof(struct task_struct, cgroups)`.
#[unsafe(no_mangle)]
pub static OFF_TASK_CGROUPS: u32 = 0;
/// `offsetof(struct css_set, subsys) + memory_cgrp_id * sizeof(void *)`.
#[unsafe(no_mangle)]
pub static OFF_CSS_SET_MEMORY: u32 = 0;
/// `offsetof(struct cgroup_subsys_state, cgroup)`.
#[unsafe(no_mangle)]
pub static OFF_CSS_CGROUP: u32 = 0;
/// `offsetof(struct cgroup, level)`.
#[unsafe(no_mangle)]
pub static OFF_CGROUP_LEVEL: u32 = 0;
/// `offsetof(struct cgroup, ancestors)`.
#[unsafe(no_mangle)]
pub static OFF_CGROUP_ANCESTORS: u32 = 0;
/// `offsetof(struct cgroup, kn)`.
#[unsafe(no_mangle)]
pub static OFF_CGROUP_KN: u32 = 0;
/// `offsetof(struct kernfs_node, id)`.
#[unsafe(no_mangle)]
pub static OFF_KERNFS_NODE_ID: u32 = 0;

/// Reads a `T` at `base + offset` from kernel memory; `None` on a fault or a null base.
#[inline(always)]
pub fn read_at<T>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}
