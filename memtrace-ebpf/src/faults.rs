//! Page-fault latency. A fault starts at `exceptions:page_fault_{user,kernel}` and ends where the
//! kernel accounts it (`mm_account_fault`): the perf software events PAGE_FAULTS_MIN/MAJ, or
//! `memcg:count_memcg_events(PGFAULT)`. `count_memcg_events` also tells, in the faulting task,
//! whether the fault did I/O (PGMAJFAULT), was a swap-in (PSWPIN/ZSWPIN) or allocated a
//! transparent huge page (THP_FAULT_ALLOC).
//!
//! The in-flight state lives in a per-CPU slot while its thread runs: the common fault starts
//! and ends on one CPU without sleeping, so it costs no hash map. When the thread is switched
//! out mid-fault (I/O, a lock, preemption), `sched_switch` parks the state in `PARKED`, keyed by
//! thread id, and when the thread is switched back in it moves the state into that CPU's slot,
//! adding the time it was off the CPU. The thread's `sched_info.run_delay` at the first switch
//! and at the end tells how much of that time it waited runnable for a CPU; the rest it was
//! blocked.
//!
//! Minor faults that never left the CPU, nearly all of them, go out in per-CPU batches of
//! 8-byte entries (see `memtrace_common::batch`); the others as full records.
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_tracepoint, map, perf_event},
    maps::{Array, HashMap, PerCpuArray},
    programs::{BtfTracePointContext, PerfEventContext},
};
use memtrace_common::{
    COMM_LEN, EventKind, FaultClass, FaultEvent, InFlightFault, MAX_PARKED_FAULTS, SwapDir,
    batch::{
        CommEvent, MINOR_BATCH_LEN, MINOR_BATCH_MAX_AGE_NS, MinorBatch, MinorBatchSlot, SEEN_SLOTS,
        UNTIMED_LATENCY,
    },
    fault_end, fault_flags, stat,
};

use crate::{
    filter::current_wanted,
    kernel::{
        VM_PGFAULT, VM_PGMAJFAULT, VM_PSWPIN, VM_PSWPOUT, VM_THP_FAULT_ALLOC, VM_ZSWPIN,
        css_memcg_id, current_memcg_css, global, off, read_at,
    },
    maps::{EVENTS, LOST, STATS, bump, bump_by, wakeup_flags},
};

/// A `memtrace_common::fault_end` value: which hook completes a fault.
#[unsafe(no_mangle)]
static FAULT_END: u32 = fault_end::PERF;

/// Minor faults waiting to be sent, per CPU.
#[map(name = "MINOR_BATCH")]
static MINOR_BATCH: PerCpuArray<MinorBatchSlot> = PerCpuArray::with_max_entries(1, 0);

/// The fault in flight on this CPU.
#[map(name = "FAULT_SLOT")]
static FAULT_SLOT: PerCpuArray<InFlightFault> = PerCpuArray::with_max_entries(1, 0);

/// Faults whose task was switched out before they completed, by thread id. A plain hash, not an
/// LRU: exits remove their threads' entries, and a full map is counted (`PARK_FAILED`) rather
/// than silently evicting a live fault.
#[map(name = "PARKED")]
static PARKED: HashMap<u32, InFlightFault> = HashMap::with_max_entries(MAX_PARKED_FAULTS, 0);

/// How many faults are parked now. `sched_switch` looks the next thread up in `PARKED` only
/// when this is not 0, so a machine with no fault off-CPU pays one array read per switch.
#[map(name = "PARKED_NOW")]
static PARKED_NOW: Array<u64> = Array::with_max_entries(1, 0);

/// Adds `delta` to `PARKED_NOW` atomically (parking and unparking run on different CPUs).
#[inline(always)]
fn count_parked(delta: i64) {
    if let Some(count) = PARKED_NOW.get_ptr_mut(0) {
        // SAFETY: an aligned u64 map value; BPF_ATOMIC | BPF_ADD, what `__sync_fetch_and_add`
        // compiles to when its result is unused.
        #[cfg(target_arch = "bpf")]
        unsafe {
            core::arch::asm!("lock *(u64 *)({0} + 0) += {1}", in(reg) count, in(reg) delta)
        };
        #[cfg(not(target_arch = "bpf"))]
        let _ = (count, delta);
    }
}

/// Removes a thread's parked fault, keeping `PARKED_NOW` exact.
#[inline(always)]
fn unpark(tid: u32) {
    if PARKED.remove(&tid).is_ok() {
        count_parked(-1);
    }
}

/// Forgets a thread's parked fault when the thread exits mid-fault (killed while faulting), so
/// the map only holds live threads.
#[inline(always)]
pub fn forget_thread(tid: u32) {
    unpark(tid);
}

#[inline(always)]
fn slot() -> Option<&'static mut InFlightFault> {
    // SAFETY: a per-CPU slot is only touched by programs running on this CPU, one at a time.
    FAULT_SLOT.get_ptr_mut(0).map(|ptr| unsafe { &mut *ptr })
}

#[inline(always)]
fn fault_start(kernel_mode: bool) {
    if !current_wanted() {
        return;
    }
    let Some(slot) = slot() else { return };
    slot.tid = bpf_get_current_pid_tgid() as u32;
    slot.flags = if kernel_mode {
        fault_flags::KERNEL_MODE
    } else {
        0
    };
    slot.swapin_pages = 0;
    slot.off_since_ns = 0;
    slot.off_cpu_ns = 0;
    // SAFETY: plain helper call.
    slot.start_ns = unsafe { bpf_ktime_get_ns() };
}

/// `exceptions:page_fault_user(address, regs, error_code)`.
#[btf_tracepoint(function = "page_fault_user")]
pub fn page_fault_user(_ctx: BtfTracePointContext) -> i32 {
    fault_start(false);
    0
}

/// `exceptions:page_fault_kernel(address, regs, error_code)`: the kernel touching a user page
/// (copy_to_user into fresh memory) is a fault of the process too, counted in its minflt.
#[btf_tracepoint(function = "page_fault_kernel")]
pub fn page_fault_kernel(_ctx: BtfTracePointContext) -> i32 {
    fault_start(true);
    0
}

/// `sched:sched_switch(preempt, prev, next, prev_state)`, on the CPU switching from `prev` (the
/// current task) to `next`. `prev`'s fault in flight is parked; `next`'s parked fault, if any,
/// comes back into this CPU's slot.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    let Some(slot) = slot() else { return 0 };
    if slot.tid != 0 && slot.tid == bpf_get_current_pid_tgid() as u32 {
        park(slot, ctx.arg(1));
    }
    if PARKED_NOW.get(0).is_some_and(|&n| n != 0) {
        let next: u64 = ctx.arg(2);
        if let Some(tid) = read_at::<u32>(next, off!(task_pid))
            && tid != 0
            // SAFETY: the entry is copied out before it is removed.
            && let Some(parked) = unsafe { PARKED.get(&tid) }.copied()
        {
            *slot = parked;
            slot.off_cpu_ns += now_ns().saturating_sub(slot.off_since_ns);
            slot.off_since_ns = 0;
            unpark(tid);
        }
    }
    0
}

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() }
}

/// Moves the running thread's fault from this CPU's slot to `PARKED`.
#[inline(always)]
fn park(slot: &mut InFlightFault, task: u64) {
    if slot.flags & fault_flags::PARKED == 0 {
        slot.flags |= fault_flags::PARKED;
        // Up to date while the thread runs: it grows only when the thread is switched in.
        slot.run_delay_ns = read_at::<u64>(task, off!(task_run_delay)).unwrap_or(0);
    }
    slot.off_since_ns = now_ns();
    if PARKED.insert(&slot.tid, &*slot, 0).is_ok() {
        count_parked(1);
        bump(&STATS, stat::PARKED);
    } else {
        bump(&STATS, stat::PARK_FAILED);
    }
    slot.tid = 0;
}

/// The current thread's fault in flight: this CPU's slot, or its parked state.
#[inline(always)]
fn in_flight(tid: u32) -> Option<&'static mut InFlightFault> {
    if let Some(slot) = slot()
        && slot.tid == tid
    {
        return Some(slot);
    }
    // SAFETY: the entry belongs to this thread, which is the one running.
    PARKED.get_ptr_mut(&tid).map(|ptr| unsafe { &mut *ptr })
}

/// `memcg:count_memcg_events(memcg, item, val)`, fired in the task that does the counting.
#[btf_tracepoint(function = "count_memcg_events")]
pub fn count_memcg_events(ctx: BtfTracePointContext) -> i32 {
    let item: i32 = ctx.arg(1);
    let item = item as u32;
    // The most frequent item first: this runs for every fault on the machine.
    if item == global(&VM_PGFAULT) {
        // The memcg the fault is charged to, as the css the per-CPU cache compares.
        let memcg: u64 = ctx.arg(0);
        let css = memcg + u64::from(off!(memcg_css));
        if global(&FAULT_END) == fault_end::MEMCG_EVENT {
            fault_end(None, css);
        } else {
            // The perf end hook never sees a fault taken without an exception; PGFAULT comes
            // before it, with a hardware fault's start still in flight.
            let pid_tgid = bpf_get_current_pid_tgid();
            if in_flight(pid_tgid as u32).is_none() && current_wanted() {
                untimed(pid_tgid, now_ns(), css);
            }
        }
        return 0;
    }
    if item == global(&VM_PSWPOUT) {
        crate::swap::swap_traffic(ctx.arg(0), SwapDir::Out as u32, ctx.arg(2));
        return 0;
    }
    if item == global(&VM_PSWPIN) {
        crate::swap::swap_traffic(ctx.arg(0), SwapDir::In as u32, ctx.arg(2));
    }
    let bit = if item == global(&VM_PGMAJFAULT) {
        fault_flags::MAJOR_SEEN
    } else if item == global(&VM_PSWPIN) || item == global(&VM_ZSWPIN) {
        fault_flags::SWAPIN_SEEN
    } else if item == global(&VM_THP_FAULT_ALLOC) {
        fault_flags::THP_SEEN
    } else {
        return 0;
    };
    let tid = bpf_get_current_pid_tgid() as u32;
    if let Some(fault) = in_flight(tid) {
        fault.flags |= bit;
        if bit == fault_flags::SWAPIN_SEEN {
            let pages: u64 = ctx.arg(2);
            fault.swapin_pages = fault.swapin_pages.saturating_add(pages as u32);
        }
    }
    0
}

/// Perf software event PAGE_FAULTS_MIN: a fault completed without I/O.
#[perf_event]
pub fn fault_done_minor(_ctx: PerfEventContext) -> i32 {
    fault_end(Some(false), current_memcg_css());
    0
}

/// Perf software event PAGE_FAULTS_MAJ: a fault completed after I/O (or a retry).
#[perf_event]
pub fn fault_done_major(_ctx: PerfEventContext) -> i32 {
    fault_end(Some(true), current_memcg_css());
    0
}

/// Completes the current thread's fault. `major` comes from the perf event; with the memcg end
/// hook it is `None` and the PGMAJFAULT seen in flight decides. `css` is the memory cgroup the
/// fault counts in.
#[inline(always)]
fn fault_end(major: Option<bool>, css: u64) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let fault = if let Some(slot) = slot()
        && slot.tid == tid
    {
        slot.tid = 0;
        *slot
    } else if let Some(parked) = unsafe { PARKED.get(&tid) }.copied() {
        // Its switch back in was not seen (parked before the count caught up): off until now.
        unpark(tid);
        InFlightFault {
            off_cpu_ns: parked.off_cpu_ns + now.saturating_sub(parked.off_since_ns),
            ..parked
        }
    } else {
        if major.is_none() {
            // No exception started it: a fault through get_user_pages.
            if current_wanted() {
                untimed(pid_tgid, now, css);
            }
        } else if current_wanted() {
            bump(&STATS, stat::UNMATCHED_END);
        }
        return;
    };
    let flags = fault.flags;
    let major = major.unwrap_or(flags & fault_flags::MAJOR_SEEN != 0);
    let class = if major {
        if flags & fault_flags::SWAPIN_SEEN != 0 {
            FaultClass::MajorSwap
        } else {
            FaultClass::MajorFile
        }
    } else if flags & fault_flags::THP_SEEN != 0 {
        FaultClass::Thp
    } else {
        FaultClass::Minor
    };
    let tgid = (pid_tgid >> 32) as u32;
    let latency_ns = now.saturating_sub(fault.start_ns);
    let parked = flags & fault_flags::PARKED != 0;
    if class == FaultClass::Minor
        && !parked
        && latency_ns < u64::from(UNTIMED_LATENCY)
        && batch_minor(tgid, latency_ns, now, css)
    {
        return;
    }
    let waiting_ns = if parked {
        // SAFETY: plain helper call; the pointer is only read through bpf_probe_read_kernel.
        let task = unsafe { bpf_get_current_task() };
        read_at::<u64>(task, off!(task_run_delay))
            .map_or(0, |now_delay| now_delay.saturating_sub(fault.run_delay_ns))
            .min(fault.off_cpu_ns)
    } else {
        0
    };
    let Some(mut entry) = EVENTS.reserve::<FaultEvent>(0) else {
        bump(&LOST, EventKind::Fault as u32);
        return;
    };
    entry.write(FaultEvent {
        kind: EventKind::Fault as u32,
        class: class as u32,
        tgid,
        tid,
        start_ns: fault.start_ns,
        latency_ns,
        flags,
        swapin_pages: fault.swapin_pages,
        off_cpu_ns: fault.off_cpu_ns.min(latency_ns),
        waiting_ns,
        memcg_id: css_memcg_id(css),
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(wakeup_flags());
}

/// Counts a fault taken without a CPU exception (`fault_flags::UNTIMED`): a batch entry with
/// the reserved latency, or a full record when the batch can't take it.
#[inline(always)]
fn untimed(pid_tgid: u64, now: u64, css: u64) {
    let tgid = (pid_tgid >> 32) as u32;
    if batch_minor(tgid, u64::from(UNTIMED_LATENCY), now, css) {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<FaultEvent>(0) else {
        bump(&LOST, EventKind::Fault as u32);
        return;
    };
    entry.write(FaultEvent {
        kind: EventKind::Fault as u32,
        class: FaultClass::Minor as u32,
        tgid,
        tid: pid_tgid as u32,
        start_ns: now,
        latency_ns: 0,
        flags: fault_flags::UNTIMED,
        swapin_pages: 0,
        off_cpu_ns: 0,
        waiting_ns: 0,
        memcg_id: css_memcg_id(css),
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(wakeup_flags());
}

/// Adds a minor fault to this CPU's batch, sending the batch when it is full or old. Returns
/// false when the fault needs a full record instead: the thread group's first on this CPU (its
/// name and memory cgroup travel with it), its first in another memory cgroup (`css`), or a
/// latency the entry can't hold (`UNTIMED_LATENCY` and beyond are not latencies).
#[inline(always)]
fn batch_minor(tgid: u32, latency_ns: u64, now: u64, css: u64) -> bool {
    let Some(slot) = MINOR_BATCH.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: a per-CPU slot, touched only by programs on this CPU, one at a time.
    let slot = unsafe { &mut *slot };
    let at = tgid as usize % SEEN_SLOTS;
    if slot.seen[at] != tgid || slot.seen_css[at] != css || latency_ns > u64::from(UNTIMED_LATENCY)
    {
        slot.seen[at] = tgid;
        slot.seen_css[at] = css;
        return false;
    }
    let batch = &mut slot.batch;
    let index = batch.count as usize;
    if index >= MINOR_BATCH_LEN {
        return false;
    }
    if index == 0 {
        batch.kind = EventKind::MinorBatch as u32;
        batch.first_ns = now;
    }
    batch.entries[index] = MinorBatch::entry(tgid, latency_ns as u32);
    batch.count = index as u32 + 1;
    if batch.count as usize == MINOR_BATCH_LEN
        || now.saturating_sub(batch.first_ns) > MINOR_BATCH_MAX_AGE_NS
    {
        if EVENTS
            .output::<MinorBatch>(&*batch, wakeup_flags())
            .is_err()
        {
            // Every fault of the batch is lost: count them all.
            bump_by(&LOST, EventKind::Fault as u32, u64::from(batch.count));
        }
        batch.count = 0;
    }
    true
}

/// `task:task_rename(task, comm)`: exec and prctl(PR_SET_NAME) rename a thread. A main
/// thread's new name is its process's: rare, and only the name crosses the ring buffer.
#[btf_tracepoint(function = "task_rename")]
pub fn task_rename(ctx: BtfTracePointContext) -> i32 {
    if !current_wanted() {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let comm: *const u8 = ctx.arg(1);
    let (Some(pid), Some(tgid)) = (
        read_at::<u32>(task, off!(task_pid)),
        read_at::<u32>(task, off!(task_tgid)),
    ) else {
        return 0;
    };
    if pid != tgid {
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<CommEvent>(0) else {
        bump(&LOST, EventKind::Comm as u32);
        return 0;
    };
    let mut name = [0u8; COMM_LEN];
    // SAFETY: the helper bounds the copy by the buffer and fails cleanly on a bad pointer.
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(comm, &mut name) };
    entry.write(CommEvent {
        kind: EventKind::Comm as u32,
        tgid,
        comm: name,
    });
    entry.submit(wakeup_flags());
    0
}
