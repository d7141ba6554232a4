//! Kernel facts resolved from BTF by userspace at start-up and handed in as read-only globals
//! (aya has no CO-RE relocations, and enum values depend on the kernel's configuration).
use memtrace_common::{offsets::KernelOffsets, zone_state};

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

/// Reads a `T` at `base + offset` from kernel memory; `None` on a fault or a null base. For
/// where a failed read must be told from a zero: each call forks the verifier's walk (see
/// [`peek`]).
#[inline(always)]
pub fn read_at<T>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}

/// A type every bit pattern of which is a value, zero included: what [`peek`] may return.
///
/// # Safety
/// Implement only for plain integers and arrays of them.
pub unsafe trait Plain: Copy {}
// SAFETY: plain integers and byte arrays.
unsafe impl Plain for u8 {}
// SAFETY: as above.
unsafe impl Plain for i16 {}
// SAFETY: as above.
unsafe impl Plain for u16 {}
// SAFETY: as above.
unsafe impl Plain for i32 {}
// SAFETY: as above.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for i64 {}
// SAFETY: as above.
unsafe impl Plain for u64 {}
// SAFETY: as above.
unsafe impl<const N: usize> Plain for [u8; N] {}

/// Reads a `T` at `base + offset` from kernel memory; zero when it cannot be read (a null
/// `base` included: the address is then below the kernel's and the read fails). No branch:
/// `bpf_probe_read_kernel` zeroes its buffer on failure, so the verifier walks one path where
/// `read_at(..).unwrap_or(0)` forks two at every read, and a chain of them (a memcg's
/// ancestors, a victim's counters) multiplies its paths and its load time.
#[inline(always)]
pub fn peek<T: Plain>(base: u64, offset: u32) -> T {
    let mut value = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the helper writes all `size_of::<T>()` bytes, the value or zeroes, and any bytes
    // are a `T` (`Plain`).
    unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            value.as_mut_ptr().cast(),
            core::mem::size_of::<T>() as u32,
            base.wrapping_add(u64::from(offset)) as *const core::ffi::c_void,
        );
        value.assume_init()
    }
}

/// The current task's memory cgroup, as its `struct cgroup_subsys_state *`
/// (`task->cgroups->subsys[memory_cgrp_id]`, cgroup v1 and v2 alike); 0 when unreadable.
#[inline(always)]
pub fn current_memcg_css() -> u64 {
    // SAFETY: plain helper call; the pointer is only read through bpf_probe_read_kernel.
    let task = unsafe { aya_ebpf::helpers::bpf_get_current_task() };
    peek(peek(task, off!(task_cgroups)), off!(css_set_memory))
}

/// The inode of a memory cgroup's directory, from its css (`css->cgroup->kn->id`): the id
/// userspace names cgroups by; 0 when unreadable.
#[inline(always)]
pub fn css_memcg_id(css: u64) -> u64 {
    peek(
        peek(peek(css, off!(css_cgroup)), off!(cgroup_kn)),
        off!(kernfs_node_id),
    )
}

/// Most free-block orders read per zone (`NR_PAGE_ORDERS` is 11 on x86-64).
const MAX_ORDERS: u32 = 16;

/// The local NUMA node's zones as a [`zone_state`] word: which zones' free pages were under
/// their `min` and `low` watermarks (boost included, as `min_wmark_pages()`), which were read,
/// and the largest free block of the highest of them (Normal, or Movable where populated). The
/// node is reached through the current task's memory cgroup (`nodeinfo[nid]->lruvec.pgdat`):
/// the kernel keeps no other path to it that a tracing program can read. 0 when it cannot be
/// read. Called as a stall begins: rare next to faults, so its few dozen reads cost nothing
/// that matters.
#[inline(always)]
pub fn zone_state() -> u32 {
    if off!(zone_free) == u32::MAX {
        return 0;
    }
    let css = current_memcg_css();
    if css == 0 {
        return 0;
    }
    let memcg = css.wrapping_sub(u64::from(off!(memcg_css)));
    // SAFETY: plain helper call.
    let nid = u64::from(unsafe { aya_ebpf::helpers::bpf_get_numa_node_id() } as u32);
    let node: u64 = peek(memcg + u64::from(off!(memcg_nodeinfo)) + nid * 8, 0);
    let pgdat: u64 = peek(node, off!(memcg_node_pgdat));
    if pgdat == 0 {
        return 0;
    }
    let zones = off!(zones);
    let orders = off!(orders);
    let mut word = 0u32;
    // The highest zone read: most allocations prefer it, and the lower zones' blocks are held
    // back from them (lowmem_reserve).
    let mut top = 0u64;
    for zid in 0..zone_state::MAX_ZONES {
        if zid >= zones {
            break;
        }
        let zone = pgdat + u64::from(off!(pgdat_zones)) + u64::from(zid * off!(zone_size));
        if peek::<u64>(zone, off!(zone_managed)) == 0 {
            continue;
        }
        // One read at a time, each defaulted: a tuple of `Option`s leaves the payload of a
        // `None` undefined, which the verifier refuses to see spilled.
        let Some(free) = read_at::<i64>(zone, off!(zone_free)) else {
            continue;
        };
        let free = free.max(0) as u64;
        let boost = peek::<u64>(zone, off!(zone_boost));
        let min = peek::<u64>(zone, off!(zone_min));
        let low = peek::<u64>(zone, off!(zone_low));
        word |= 1 << (zone_state::READ_SHIFT + zid);
        if free < min + boost {
            word |= 1 << (zone_state::UNDER_MIN_SHIFT + zid);
        }
        if free < low + boost {
            word |= 1 << (zone_state::UNDER_LOW_SHIFT + zid);
        }
        top = zone;
    }
    // Its largest free order, plus one (0: none), from the top down.
    let mut largest = 0u32;
    if top != 0 {
        for step in 0..MAX_ORDERS {
            let Some(order) = orders.checked_sub(step + 1) else {
                break;
            };
            let area = u64::from(off!(zone_free_area)) + u64::from(order * off!(free_area_size));
            if peek::<u64>(top + area, off!(free_area_nr_free)) > 0 {
                largest = order + 1;
                break;
            }
        }
    }
    word | (largest << zone_state::ORDER_SHIFT)
}

/// The current task as a BTF pointer. Its members load directly, without a helper call: the
/// offsets come from `OFFSETS`, a frozen read-only map, so the verifier knows each as a constant
/// and checks the access against the kernel's own type (a bad offset fails the load, never a
/// read).
#[inline(always)]
pub fn current_task_btf() -> *const u8 {
    // SAFETY: plain helper call.
    unsafe { aya_ebpf::helpers::bpf_get_current_task_btf() as *const u8 }
}

/// Loads a `T` at `base + offset` from a BTF pointer (a fault reads 0, as the kernel's
/// exception table turns it into).
#[inline(always)]
pub fn load<T: Copy>(base: *const u8, offset: u32) -> T {
    // SAFETY: the verifier checks the access against the BTF type of `base`.
    unsafe { core::ptr::read(base.add(offset as usize).cast::<T>()) }
}

/// `(pid << 32) | tid` of `task`, as `bpf_get_current_pid_tgid()` gives for the current task,
/// from two loads instead of a helper call (a call and its return cost tens of ns where the
/// CPU's return-stack mitigations are on, and a fault's start and end each need one).
#[inline(always)]
pub fn task_pid_tgid(task: *const u8) -> u64 {
    let tid: u32 = load(task, off!(task_pid));
    let tgid: u32 = load(task, off!(task_tgid));
    (u64::from(tgid) << 32) | u64::from(tid)
}

/// The current thread's scheduler clocks, read at a fault's start and end.
#[derive(Clone, Copy)]
pub struct SchedMarks {
    /// `se.exec_start − se.sum_exec_runtime`: grows only when the thread is switched in.
    pub switch: u64,
    /// The same in the run queue's clock (see `InFlightFault::off_mark`).
    pub off: u64,
    /// `sched_info.run_delay` (0 without CONFIG_SCHED_INFO).
    pub run_delay: u64,
}

/// `se.exec_start − se.sum_exec_runtime` of `task`.
#[inline(always)]
pub fn switch_mark(task: *const u8) -> u64 {
    let exec_start: u64 = load(task, off!(task_exec_start));
    let runtime: u64 = load(task, off!(task_sum_exec_runtime));
    exec_start.wrapping_sub(runtime)
}

/// All three marks of `task`, the current thread.
#[inline(always)]
pub fn sched_marks(task: *const u8) -> SchedMarks {
    let switch = switch_mark(task);
    let mut off = switch;
    if off!(task_cfs_rq) != u32::MAX {
        let cfs_rq: *const u8 = load(task, off!(task_cfs_rq));
        let rq: *const u8 = load(cfs_rq, off!(cfs_rq_rq));
        let clock: u64 = load(rq, off!(rq_clock));
        let clock_task: u64 = load(rq, off!(rq_clock_task));
        off = off.wrapping_add(clock.wrapping_sub(clock_task));
    }
    let run_delay = if off!(task_run_delay) != u32::MAX {
        load(task, off!(task_run_delay))
    } else {
        0
    };
    SchedMarks {
        switch,
        off,
        run_delay,
    }
}

/// `PF_KTHREAD`: a kernel thread (no memory of its own to report).
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// A task iterator's context, `struct bpf_iter__task`.
#[repr(C)]
pub struct IterTask {
    pub meta: *const IterMeta,
    pub task: u64,
}

/// `struct bpf_iter_meta`.
#[repr(C)]
pub struct IterMeta {
    pub seq: *mut core::ffi::c_void,
    pub session_id: u64,
    pub seq_num: u64,
}

/// A process met by a task iterator: its leader with memory of its own.
pub struct IterProcess {
    pub seq: *mut core::ffi::c_void,
    pub task: u64,
    pub tgid: u32,
    pub flags: u32,
    pub mm: u64,
}

/// The process of a task iterator's call: `None` for the final call (no task), a thread that
/// is not its process's leader (one record per process), and a kernel thread or a task
/// without memory.
#[inline(always)]
pub fn iter_process(ctx: *mut core::ffi::c_void) -> Option<IterProcess> {
    let ctx = ctx as *const IterTask;
    // SAFETY: the kernel hands a valid `bpf_iter__task`; the verifier checks these loads.
    let (meta, task) = unsafe { ((*ctx).meta, (*ctx).task) };
    if task == 0 || meta.is_null() {
        return None;
    }
    let pid: u32 = peek(task, off!(task_pid));
    let tgid: u32 = peek(task, off!(task_tgid));
    if pid != tgid || pid == 0 {
        return None;
    }
    let flags: u32 = peek(task, off!(task_flags));
    let mm: u64 = peek(task, off!(task_mm));
    if flags & PF_KTHREAD != 0 || mm == 0 {
        return None;
    }
    // SAFETY: `meta` is the iterator's, checked non-null above.
    let seq = unsafe { (*meta).seq };
    Some(IterProcess {
        seq,
        task,
        tgid,
        flags,
        mm,
    })
}
