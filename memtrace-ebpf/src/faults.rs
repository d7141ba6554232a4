//! Page-fault latency. A fault starts at `exceptions:page_fault_{user,kernel}` and ends where the
//! kernel accounts it (`mm_account_fault`): the perf software events PAGE_FAULTS_MIN/MAJ, or
//! `memcg:count_memcg_events(PGFAULT)`. `count_memcg_events` also tells, in the faulting task,
//! whether the fault did I/O (PGMAJFAULT), was a swap-in (PSWPIN/ZSWPIN) or allocated a
//! transparent huge page (THP_FAULT_ALLOC).
//!
//! The in-flight state lives in the thread's own slot of `IN_FLIGHT`, an array indexed by
//! thread id, so nothing needs to run when a thread is switched out mid-fault: no program on
//! `sched_switch`, which would tax every context switch of the machine. Whether and how long the
//! thread left the CPU comes from its scheduler counters, read directly through BTF at the
//! fault's start and end (`kernel::sched_marks`): `se.exec_start − se.sum_exec_runtime` grows
//! only when the thread is switched in, by the time it was away; `sched_info.run_delay` grows by
//! the part of it spent runnable, waiting for a CPU; the rest it was blocked.
//!
//! Minor faults that never left the CPU, nearly all of them, go out in per-CPU batches of
//! 8-byte entries (see `memtrace_common::batch`); the others as full records.
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_tracepoint, map, perf_event},
    maps::{Array, PerCpuArray},
    programs::{BtfTracePointContext, PerfEventContext},
};
use memtrace_common::{
    COMM_LEN, EventKind, FaultClass, FaultEvent, InFlightFault, MAX_IN_FLIGHT_FAULTS, SwapDir,
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
        css_memcg_id, current_memcg_css, current_task_btf, global, off, peek, read_at, sched_marks,
        switch_mark, task_pid_tgid,
    },
    maps::{EVENTS, LOST, STATS, bump, bump_by, wakeup_flags},
};

/// A `memtrace_common::fault_end` value: which hook completes a fault.
#[unsafe(no_mangle)]
static FAULT_END: u32 = fault_end::PERF;

/// Minor faults waiting to be sent, per CPU.
#[map(name = "MINOR_BATCH")]
static MINOR_BATCH: PerCpuArray<MinorBatchSlot> = PerCpuArray::with_max_entries(1, 0);

/// Faults in flight, one slot per thread id modulo the slot count. Userspace sizes it to
/// pid_max rounded up to a power of two (at most `MAX_IN_FLIGHT_FAULTS`) and sets the mask.
#[map(name = "IN_FLIGHT")]
static IN_FLIGHT: Array<InFlightFault> = Array::with_max_entries(MAX_IN_FLIGHT_FAULTS, 0);

/// The slot count of `IN_FLIGHT` minus one.
#[unsafe(no_mangle)]
static IN_FLIGHT_MASK: u32 = MAX_IN_FLIGHT_FAULTS - 1;

/// A slot whose fault started longer ago than this is a leftover (a fault that ended in a
/// signal is never accounted), not a live fault of another thread.
const LIVE_FAULT_NS: u64 = 10_000_000_000;

/// The slot of thread `tid`, whoever holds it now.
#[inline(always)]
fn slot(tid: u32) -> Option<&'static mut InFlightFault> {
    // SAFETY: a slot is written only by its thread (and the rare thread sharing its index).
    IN_FLIGHT
        .get_ptr_mut(tid & global(&IN_FLIGHT_MASK))
        .map(|ptr| unsafe { &mut *ptr })
}

/// The fault thread `tid` has in flight, if its slot holds one.
#[inline(always)]
pub(crate) fn in_flight(tid: u32) -> Option<&'static mut InFlightFault> {
    slot(tid).filter(|slot| slot.tid == tid)
}

/// Forgets a thread's fault in flight when the thread exits mid-fault (killed while faulting),
/// so that a later thread with its id starts clean.
#[inline(always)]
pub fn forget_thread(tid: u32) {
    if let Some(fault) = in_flight(tid) {
        fault.tid = 0;
    }
}

#[inline(always)]
fn fault_start(kernel_mode: bool) {
    if !current_wanted() {
        return;
    }
    let task = current_task_btf();
    let tid = task_pid_tgid(task) as u32;
    let Some(slot) = slot(tid) else { return };
    let now = now_ns();
    if slot.tid != tid && slot.tid != 0 && now.saturating_sub(slot.start_ns) < LIVE_FAULT_NS {
        bump(&STATS, stat::PARK_FAILED);
    }
    let marks = sched_marks(task);
    slot.tid = tid;
    slot.flags = if kernel_mode {
        fault_flags::KERNEL_MODE
    } else {
        0
    };
    slot.swapin_pages = 0;
    slot.file_ino = 0;
    slot.switch_mark = marks.switch;
    slot.off_mark = marks.off;
    slot.run_delay_ns = marks.run_delay;
    slot.start_ns = now;
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

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() }
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
            let pid_tgid = task_pid_tgid(current_task_btf());
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
    let task = current_task_btf();
    let pid_tgid = task_pid_tgid(task);
    let tid = pid_tgid as u32;
    let now = now_ns();
    let Some(slot) = in_flight(tid) else {
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
    slot.tid = 0;
    // Only what the common case needs is read here; the rest of the slot when a full record
    // goes out.
    let start_ns = slot.start_ns;
    let flags = slot.flags;
    let left_cpu = switch_mark(task) != slot.switch_mark;
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
    let latency_ns = now.saturating_sub(start_ns);
    if class == FaultClass::Minor
        && !left_cpu
        && latency_ns < u64::from(UNTIMED_LATENCY)
        && batch_minor(tgid, latency_ns, now, css)
    {
        return;
    }
    let fault = *slot;
    let (flags, off_cpu_ns, waiting_ns) = if left_cpu {
        bump(&STATS, stat::PARKED);
        let marks = sched_marks(task);
        let off_cpu_ns = (marks.off.wrapping_sub(fault.off_mark) as i64).max(0) as u64;
        let off_cpu_ns = off_cpu_ns.min(latency_ns);
        let waiting_ns = marks.run_delay.saturating_sub(fault.run_delay_ns);
        (
            flags | fault_flags::PARKED,
            off_cpu_ns,
            waiting_ns.min(off_cpu_ns),
        )
    } else {
        (flags, 0, 0)
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
        start_ns,
        latency_ns,
        flags,
        swapin_pages: fault.swapin_pages,
        off_cpu_ns,
        waiting_ns,
        memcg_id: css_memcg_id(css),
        file_ino: fault.file_ino,
        file_dev: fault.file_dev,
        _pad: 0,
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(wakeup_flags());
}

/// `filemap:mm_filemap_fault(mapping, index)`: a fault on a file mapping that `filemap_fault`
/// serves (every one that reads the file does). The file goes into the thread's fault in
/// flight, so that a major fault names what it waited for.
#[btf_tracepoint(function = "mm_filemap_fault")]
pub fn filemap_fault(ctx: BtfTracePointContext) -> i32 {
    let Some(fault) = in_flight(bpf_get_current_pid_tgid() as u32) else {
        return 0;
    };
    let mapping: u64 = ctx.arg(0);
    let host: u64 = peek(mapping, off!(mapping_host));
    let sb: u64 = peek(host, off!(inode_sb));
    fault.file_ino = peek(host, off!(inode_ino));
    fault.file_dev = peek(sb, off!(sb_dev));
    0
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
        file_ino: 0,
        file_dev: 0,
        _pad: 0,
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
    if latency_ns > u64::from(UNTIMED_LATENCY) {
        return false;
    }
    // The previous entry's process, in the batch's own cache line, spares a look at the cache
    // of named ones (two more lines) on a CPU that runs one faulting process.
    if slot.last_tgid != tgid || slot.last_css != css {
        let at = tgid as usize % SEEN_SLOTS;
        let named = slot.seen[at] == tgid && slot.seen_css[at] == css;
        slot.last_tgid = tgid;
        slot.last_css = css;
        if !named {
            slot.seen[at] = tgid;
            slot.seen_css[at] = css;
            // A batch left waiting goes out with this fault too, not only with the next
            // batched one: a CPU whose faults all take full records would otherwise keep it.
            let batch = &mut slot.batch;
            if batch.count > 0 && now.saturating_sub(batch.first_ns) > MINOR_BATCH_MAX_AGE_NS {
                send_batch(batch);
            }
            return false;
        }
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
        send_batch(batch);
    }
    true
}

/// Sends this CPU's batch and empties it.
#[inline(always)]
fn send_batch(batch: &mut MinorBatch) {
    if EVENTS
        .output::<MinorBatch>(&*batch, wakeup_flags())
        .is_err()
    {
        // Every fault of the batch is lost: count them all.
        bump_by(&LOST, EventKind::Fault as u32, u64::from(batch.count));
    }
    batch.count = 0;
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
