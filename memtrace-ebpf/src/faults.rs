//! Page-fault latency. A fault starts at `exceptions:page_fault_{user,kernel}` and ends where the
//! kernel accounts it (`mm_account_fault`): the perf software events PAGE_FAULTS_MIN/MAJ, or
//! `memcg:count_memcg_events(PGFAULT)`. `count_memcg_events` also tells, in the faulting task,
//! whether the fault did I/O (PGMAJFAULT) and whether it was a swap-in (PSWPIN/ZSWPIN).
//!
//! The in-flight state lives in a per-CPU slot: the common fault starts and ends on one CPU
//! without sleeping, so it costs no hash map. When the task is switched out mid-fault (I/O,
//! preemption), `sched_switch` parks the slot in `PARKED`, keyed by thread id.
//!
//! Minor faults, nearly all of them, go out in per-CPU batches of 8-byte entries (see
//! `memtrace_common::batch`); major faults and swap-ins as full records.
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_tracepoint, map, perf_event},
    maps::{HashMap, PerCpuArray},
    programs::{BtfTracePointContext, PerfEventContext},
};
use memtrace_common::{
    COMM_LEN, EventKind, FaultClass, FaultEvent, InFlightFault, MAX_PARKED_FAULTS, SwapDir,
    batch::{
        CommEvent, MINOR_BATCH_LEN, MINOR_BATCH_MAX_AGE_NS, MinorBatch, MinorBatchSlot, SEEN_SLOTS,
    },
    fault_end, fault_flags, stat,
};

use crate::{
    filter::current_wanted,
    kernel::{VM_PGFAULT, VM_PGMAJFAULT, VM_PSWPIN, VM_PSWPOUT, VM_ZSWPIN, global, off, read_at},
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

/// Forgets a thread's parked fault when the thread exits mid-fault (killed while faulting), so
/// the map only holds live threads.
#[inline(always)]
pub fn forget_thread(tid: u32) {
    let _ = PARKED.remove(&tid);
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

/// `sched:sched_switch`: runs in the task being switched out. A fault in flight moves to
/// `PARKED` so it survives other tasks faulting on this CPU and a migration.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(_ctx: BtfTracePointContext) -> i32 {
    let Some(slot) = slot() else { return 0 };
    if slot.tid == 0 || slot.tid != bpf_get_current_pid_tgid() as u32 {
        return 0;
    }
    slot.flags |= fault_flags::PARKED;
    if PARKED.insert(&slot.tid, &*slot, 0).is_ok() {
        bump(&STATS, stat::PARKED);
    } else {
        bump(&STATS, stat::PARK_FAILED);
    }
    slot.tid = 0;
    0
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
        if global(&FAULT_END) == fault_end::MEMCG_EVENT {
            fault_end(None);
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
    fault_end(Some(false));
    0
}

/// Perf software event PAGE_FAULTS_MAJ: a fault completed after I/O (or a retry).
#[perf_event]
pub fn fault_done_major(_ctx: PerfEventContext) -> i32 {
    fault_end(Some(true));
    0
}

/// Completes the current thread's fault. `major` comes from the perf event; with the memcg end
/// hook it is `None` and the PGMAJFAULT seen in flight decides.
#[inline(always)]
fn fault_end(major: Option<bool>) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    let (start_ns, flags, swapin_pages) = if let Some(slot) = slot()
        && slot.tid == tid
    {
        slot.tid = 0;
        (slot.start_ns, slot.flags, slot.swapin_pages)
    } else if let Some(parked) = unsafe { PARKED.get(&tid) } {
        let found = (parked.start_ns, parked.flags, parked.swapin_pages);
        let _ = PARKED.remove(&tid);
        found
    } else {
        if current_wanted() {
            bump(&STATS, stat::UNMATCHED_END);
        }
        return;
    };
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let major = major.unwrap_or(flags & fault_flags::MAJOR_SEEN != 0);
    let class = if !major {
        FaultClass::Minor
    } else if flags & fault_flags::SWAPIN_SEEN != 0 {
        FaultClass::MajorSwap
    } else {
        FaultClass::MajorFile
    };
    let tgid = (pid_tgid >> 32) as u32;
    let latency_ns = now.saturating_sub(start_ns);
    if class == FaultClass::Minor && batch_minor(tgid, latency_ns, now) {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<FaultEvent>(0) else {
        bump(&LOST, EventKind::Fault as u32);
        return;
    };
    entry.write(FaultEvent {
        kind: EventKind::Fault as u32,
        class: class as u32,
        tgid,
        tid,
        start_ns,
        latency_ns,
        flags,
        swapin_pages,
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(wakeup_flags());
}

/// Adds a minor fault to this CPU's batch, sending the batch when it is full or old. Returns
/// false when the fault needs a full record instead: the thread group's first on this CPU (its
/// name travels with it), or a latency beyond the entry's 32 bits.
#[inline(always)]
fn batch_minor(tgid: u32, latency_ns: u64, now: u64) -> bool {
    let Some(slot) = MINOR_BATCH.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: a per-CPU slot, touched only by programs on this CPU, one at a time.
    let slot = unsafe { &mut *slot };
    let seen = &mut slot.seen[tgid as usize % SEEN_SLOTS];
    if *seen != tgid || latency_ns > u64::from(u32::MAX) {
        *seen = tgid;
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
