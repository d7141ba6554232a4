//! OOM kills. `oom:mark_victim` runs in the task that invoked the OOM killer (the trigger) and
//! hands over the victim's `task_struct`: the program records the victim's memory as the
//! kernel's badness sees it, the trigger and its kernel stack, and the victim's memory-cgroup
//! chain with its limits, usage and OOM bookkeeping. `struct oom_control` is out of reach
//! without function hooks, so userspace works the domain out from these (see docs).
//!
//! The victim's exit may come before its mark: `exits` makes the two meet in either order.
//!
//! Records go to their own small ring buffer with a forced wake-up: an OOM report must never
//! wait behind a batch of fault records. None of this runs on the fault path.
mod aftermath;
mod candidates;
mod exits;
mod marks;

use aya_ebpf::{
    bindings::BPF_RB_FORCE_WAKEUP,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
    },
    macros::{btf_tracepoint, map},
    maps::{LruHashMap, PerCpuArray, RingBuf, StackTrace},
    programs::{BtfTracePointContext, tracing::StackIdContext},
};
use memtrace_common::{
    COMM_LEN, EventKind,
    oom::{AftermathOp, OomKillEvent, oom_flags},
};

use crate::task::{memcg_css, memcg_level, read_comm, read_mm_counters};

use crate::{
    kernel::{off, peek, read_at},
    maps::{LOST, bump},
};

/// OOM records. Kills are rare: a small ring is plenty, and it is never full of faults.
#[map(name = "OOM_EVENTS")]
pub(crate) static OOM_EVENTS: RingBuf = RingBuf::with_byte_size(64 << 10, 0);

/// Kernel stacks of triggers.
#[map(name = "OOM_STACKS")]
static OOM_STACKS: StackTrace = StackTrace::with_max_entries(256, 0);

/// Each thread's latest reclaim: which kind, and when it started.
#[map(name = "OOM_RECLAIM")]
pub(crate) static OOM_RECLAIM: LruHashMap<u32, [u64; 2]> = LruHashMap::with_max_entries(16_384, 0);

/// The latest privileged SIGKILL sent on this CPU: [sender tid, target tgid, time].
#[map(name = "OOM_SIGKILL")]
pub(crate) static OOM_SIGKILL: PerCpuArray<[u64; 3]> = PerCpuArray::with_max_entries(1, 0);

/// `oom:mark_victim(task, uid)`, in the trigger's context.
#[btf_tracepoint(function = "mark_victim")]
pub fn oom_mark_victim(ctx: BtfTracePointContext) -> i32 {
    let victim: u64 = ctx.arg(0);
    let uid: u32 = ctx.arg(1);
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(mut entry) = OOM_EVENTS.reserve::<OomKillEvent>(0) {
        let event = entry.as_mut_ptr();
        // SAFETY: `event` points to a reserved record of the right size, written field by field.
        unsafe { fill_kill(&ctx, event, victim, uid, now) };
        entry.submit(BPF_RB_FORCE_WAKEUP.into());
    } else {
        bump(&LOST, EventKind::OomKill as u32);
    }
    // After the kill record: an exit that came first follows it on the ring.
    let Some(tgid) = read_at::<u32>(victim, off!(task_tgid)) else {
        return 0;
    };
    if let Some(exit) = exits::marked(victim, tgid, now) {
        aftermath::aftermath(AftermathOp::Exit as u32, exit.pid, tgid, exit.ts_ns);
    }
    0
}

/// Writes every field of the kill record.
///
/// # Safety
/// `event` must point to writable memory for one `OomKillEvent`.
#[inline(always)]
unsafe fn fill_kill(
    ctx: &BtfTracePointContext,
    event: *mut OomKillEvent,
    victim: u64,
    uid: u32,
    now: u64,
) {
    let e = unsafe { &mut *event };
    let current = unsafe { bpf_get_current_task() };
    let pid_tgid = bpf_get_current_pid_tgid();
    let victim_tgid = peek::<u32>(victim, off!(task_tgid));
    e.kind = EventKind::OomKill as u32;
    let (flags, signal_ns) = kill_signal(pid_tgid as u32, victim_tgid, now);
    e.flags = flags;
    // The kill is the SIGKILL, a few microseconds before the mark; the victim's exit can only
    // follow it (it takes the siglock the SIGKILL was sent under).
    e.ts_ns = signal_ns.unwrap_or(now);
    e.victim_pid = peek::<u32>(victim, off!(task_pid));
    e.victim_tgid = victim_tgid;
    e.victim_uid = uid;
    let signal: u64 = peek(victim, off!(task_signal));
    e.victim_oom_score_adj = i32::from(peek::<i16>(signal, off!(signal_oom_score_adj)));
    e.victim_comm = read_comm(victim);
    let mm: u64 = peek(victim, off!(task_mm));
    e.total_vm_pages = peek(mm, off!(mm_total_vm));
    let [file, anon, swap, shmem] = read_mm_counters(mm);
    e.rss_file_pages = file;
    e.rss_anon_pages = anon;
    e.swap_entries = swap;
    e.rss_shmem_pages = shmem;
    e.pgtables_bytes = peek(mm, off!(mm_pgtables_bytes));
    e.trigger_pid = pid_tgid as u32;
    e.trigger_tgid = (pid_tgid >> 32) as u32;
    e.trigger_comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    let trigger_css = memcg_css(current);
    e.trigger_memcg_id = memcg_level(trigger_css, false).id;
    e.trigger_stack_id = match ctx.get_stackid(&OOM_STACKS, 0) {
        Ok(id) => id,
        Err(errno) => i64::from(errno),
    };
    // SAFETY: the reclaim mark of the running thread.
    let mark = unsafe { OOM_RECLAIM.get(&(pid_tgid as u32)) }
        .copied()
        .unwrap_or([0, 0]);
    e.reclaim_kind = mark[0] as u32;
    e.reclaim_ns = mark[1];
    fill_numa(e, current);
    fill_chain(e, memcg_css(victim));
}

/// `KILL_SIGNAL_*` flags: whether this CPU just saw the trigger SIGKILL the victim, and when.
#[inline(always)]
fn kill_signal(trigger_tid: u32, victim_tgid: u32, now: u64) -> (u32, Option<u64>) {
    let Some(slot) = OOM_SIGKILL.get_ptr(0) else {
        return (0, None);
    };
    // SAFETY: per-CPU slot read on the CPU that owns it.
    let [sender, target, at] = unsafe { *slot };
    let flags = oom_flags::KILL_SIGNAL_HOOKED;
    // The kill and the mark are a few instructions apart in __oom_kill_process, in the same
    // task on the same CPU; a millisecond is a generous bound.
    if sender == u64::from(trigger_tid)
        && target == u64::from(victim_tgid)
        && now.saturating_sub(at) < 1_000_000
    {
        return (flags | oom_flags::KILL_SIGNAL_SEEN, Some(at));
    }
    (flags, None)
}

/// The trigger's cpuset nodes and memory policy, which decide a cpuset/mempolicy OOM.
#[inline(always)]
fn fill_numa(e: &mut OomKillEvent, task: u64) {
    let mems = off!(task_mems_allowed);
    e.mems_allowed = if mems == u32::MAX {
        0
    } else {
        peek(task, mems)
    };
    e.mempolicy_mode = 0;
    e.mempolicy_nodes = 0;
    e._pad = 0;
    let policy_off = off!(task_mempolicy);
    if policy_off == u32::MAX {
        return;
    }
    let policy: u64 = peek(task, policy_off);
    if policy != 0 {
        e.flags |= oom_flags::HAS_MEMPOLICY;
        e.mempolicy_mode = u32::from(peek::<u16>(policy, off!(mempolicy_mode)));
        e.mempolicy_nodes = peek(policy, off!(mempolicy_nodes));
    }
}

/// The victim's memcg chain, leaf first; unused levels zeroed.
#[inline(always)]
fn fill_chain(e: &mut OomKillEvent, leaf: u64) {
    let mut css = leaf;
    let mut levels = 0u32;
    let oom_lock_known = off!(memcg_oom_lock) != u32::MAX;
    // Every level is read, past the root too (zeros: a null css reads as one): the verifier
    // then walks the levels once, not once for each depth the chain could end at.
    for level in e.memcg.iter_mut() {
        *level = memcg_level(css, true);
        // 1 for a css, 0 for none, without a branch.
        levels += ((css | css.wrapping_neg()) >> 63) as u32;
        css = peek(css, off!(css_parent));
    }
    e.memcg_levels = levels;
    if css != 0 {
        e.flags |= oom_flags::CHAIN_TRUNCATED;
    }
    if oom_lock_known {
        e.flags |= oom_flags::OOM_LOCK_KNOWN;
    }
}
