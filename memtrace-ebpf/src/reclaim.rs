//! Reclaim and compaction stalls of tasks: begin/end tracepoint pairs in the stalling task,
//! matched by thread id (reclaim sleeps, so there is no per-CPU shortcut here; these events are
//! rare next to faults). Throttling arrives complete, with the delay the kernel measured.
//! Direct compaction is counted per attempt, as the kernel's `compact_stall`.
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
    },
    macros::{btf_tracepoint, map},
    maps::HashMap,
    programs::BtfTracePointContext,
};
use memtrace_common::{
    EventKind, InFlightStall, StallEvent, StallKind, compaction, stat, vm_count,
};

use crate::{
    filter::current_wanted,
    kernel::{css_memcg_id, current_memcg_css, off, peek, zone_state},
    maps::{EVENTS, LOST, STATS, VM_COUNTS, bump, wakeup_flags},
};

/// Stalls in flight, by thread id.
#[map(name = "STALLS")]
static STALLS: HashMap<u32, InFlightStall> = HashMap::with_max_entries(16_384, 0);

/// `PF_KTHREAD`: kernel threads (kswapd, kcompactd) do background work, not stalls.
const PF_KTHREAD: u32 = 0x0020_0000;

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn is_kthread() -> bool {
    // SAFETY: plain helper call; the pointer is only read through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    peek::<u32>(task, off!(task_flags)) & PF_KTHREAD != 0
}

/// Starts a stall. Kernel threads reclaiming directly (a kworker allocating) stall like any
/// task and are counted, as the kernel's allocstall counts them.
#[inline(always)]
fn begin(stall: StallKind, order: i32, gfp_flags: u32, detail: u32) {
    if !current_wanted() {
        return;
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    let state = InFlightStall {
        start_ns: now_ns(),
        stall: stall as u32,
        order,
        gfp_flags,
        detail,
        zones: zone_state(),
        _pad: 0,
    };
    if STALLS.insert(&tid, &state, 0).is_err() {
        bump(&STATS, stat::STALLS_DROPPED);
    }
}

/// Forgets a thread's stall in flight when the thread exits mid-stall (an OOM victim killed
/// in reclaim), so the map only holds live threads.
#[inline(always)]
pub fn forget_thread(tid: u32) {
    let _ = STALLS.remove(&tid);
    let _ = COMPACTING.remove(&tid);
}

#[inline(always)]
fn end(stall: StallKind, nr_reclaimed: u64) {
    let tid = bpf_get_current_pid_tgid() as u32;
    // SAFETY: the entry belongs to the running thread; it is copied out before removal.
    let Some(state) = (unsafe { STALLS.get(&tid) }).copied() else {
        return;
    };
    if state.stall != stall as u32 {
        return;
    }
    let _ = STALLS.remove(&tid);
    let now = now_ns();
    emit(&state, now.saturating_sub(state.start_ns), nr_reclaimed);
}

#[inline(always)]
fn emit(state: &InFlightStall, latency_ns: u64, nr_reclaimed: u64) {
    let Some(mut entry) = EVENTS.reserve::<StallEvent>(0) else {
        bump(&LOST, EventKind::Stall as u32);
        return;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    entry.write(StallEvent {
        kind: EventKind::Stall as u32,
        stall: state.stall,
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        start_ns: state.start_ns,
        latency_ns,
        nr_reclaimed,
        order: state.order,
        gfp_flags: state.gfp_flags,
        detail: state.detail,
        zones: state.zones,
        memcg_id: css_memcg_id(current_memcg_css()),
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(wakeup_flags());
}

/// `vmscan:mm_vmscan_direct_reclaim_begin(order, gfp_flags)`.
#[btf_tracepoint(function = "mm_vmscan_direct_reclaim_begin")]
pub fn direct_reclaim_begin(ctx: BtfTracePointContext) -> i32 {
    begin(StallKind::DirectReclaim, ctx.arg(0), ctx.arg(1), 0);
    0
}

/// `vmscan:mm_vmscan_direct_reclaim_end(nr_reclaimed)`.
#[btf_tracepoint(function = "mm_vmscan_direct_reclaim_end")]
pub fn direct_reclaim_end(ctx: BtfTracePointContext) -> i32 {
    end(StallKind::DirectReclaim, ctx.arg(0));
    0
}

/// `vmscan:mm_vmscan_memcg_reclaim_begin(order, gfp_flags)`.
#[btf_tracepoint(function = "mm_vmscan_memcg_reclaim_begin")]
pub fn memcg_reclaim_begin(ctx: BtfTracePointContext) -> i32 {
    begin(StallKind::MemcgReclaim, ctx.arg(0), ctx.arg(1), 0);
    0
}

/// `vmscan:mm_vmscan_memcg_reclaim_end(nr_reclaimed)`.
#[btf_tracepoint(function = "mm_vmscan_memcg_reclaim_end")]
pub fn memcg_reclaim_end(ctx: BtfTracePointContext) -> i32 {
    end(StallKind::MemcgReclaim, ctx.arg(0));
    0
}

/// `vmscan:mm_vmscan_memcg_softlimit_reclaim_begin(order, gfp_flags)`.
#[btf_tracepoint(function = "mm_vmscan_memcg_softlimit_reclaim_begin")]
pub fn softlimit_reclaim_begin(ctx: BtfTracePointContext) -> i32 {
    begin(StallKind::MemcgSoftLimit, ctx.arg(0), ctx.arg(1), 0);
    0
}

/// `vmscan:mm_vmscan_memcg_softlimit_reclaim_end(nr_reclaimed)`.
#[btf_tracepoint(function = "mm_vmscan_memcg_softlimit_reclaim_end")]
pub fn softlimit_reclaim_end(ctx: BtfTracePointContext) -> i32 {
    end(StallKind::MemcgSoftLimit, ctx.arg(0));
    0
}

/// `vmscan:mm_vmscan_node_reclaim_begin(nid, order, gfp_flags)`.
#[btf_tracepoint(function = "mm_vmscan_node_reclaim_begin")]
pub fn node_reclaim_begin(ctx: BtfTracePointContext) -> i32 {
    let nid: i32 = ctx.arg(0);
    begin(StallKind::NodeReclaim, ctx.arg(1), ctx.arg(2), nid as u32);
    0
}

/// `vmscan:mm_vmscan_node_reclaim_end(nr_reclaimed)`.
#[btf_tracepoint(function = "mm_vmscan_node_reclaim_end")]
pub fn node_reclaim_end(ctx: BtfTracePointContext) -> i32 {
    end(StallKind::NodeReclaim, ctx.arg(0));
    0
}

/// `vmscan:mm_vmscan_throttled(nid, usec_timeout, usec_delayed, reason)`: fired when the
/// throttle ends, with the time the task waited. kswapd throttling itself is background work.
#[btf_tracepoint(function = "mm_vmscan_throttled")]
pub fn throttled(ctx: BtfTracePointContext) -> i32 {
    if !current_wanted() || is_kthread() {
        return 0;
    }
    let usec_delayed: i32 = ctx.arg(2);
    let reason: i32 = ctx.arg(3);
    let latency_ns = (usec_delayed.max(0) as u64) * 1000;
    let state = InFlightStall {
        start_ns: now_ns().saturating_sub(latency_ns),
        stall: StallKind::Throttle as u32,
        order: -1,
        gfp_flags: 0,
        detail: reason as u32,
        zones: 0,
        _pad: 0,
    };
    emit(&state, latency_ns, 0);
    0
}

/// A thread's latest direct-compaction attempt. The kernel has no tracepoint at the end of an
/// attempt, so the state stays until the thread's next attempt or its exit; `last_ns` keeps a
/// later, unrelated compaction of the same thread (a write to /proc/sys/vm/compact_memory) out
/// of it.
#[repr(C)]
#[derive(Clone, Copy)]
struct CompactAttempt {
    start_ns: u64,
    /// Start of the zone being compacted now (0: none).
    zone_start_ns: u64,
    /// The attempt's latest sign of life.
    last_ns: u64,
    order: i32,
    gfp_flags: u32,
    /// A record of this attempt has gone out (it counted its stall).
    counted: u32,
    /// The local node's zones as the attempt began (a `zone_state` word).
    zones: u32,
}

/// Longest quiet gap within one attempt: between its zones only checks run.
const ATTEMPT_GAP_NS: u64 = 1_000_000_000;

/// Direct-compaction attempts, by thread id.
#[map(name = "COMPACTING")]
static COMPACTING: HashMap<u32, CompactAttempt> = HashMap::with_max_entries(16_384, 0);

/// The current thread's attempt, if it is still going on at `now`.
#[inline(always)]
fn attempt(now: u64) -> Option<&'static mut CompactAttempt> {
    let tid = bpf_get_current_pid_tgid() as u32;
    // SAFETY: the entry belongs to the running thread, the only one touching it.
    let attempt = unsafe { &mut *COMPACTING.get_ptr_mut(&tid)? };
    (now.saturating_sub(attempt.last_ns) < ATTEMPT_GAP_NS).then_some(attempt)
}

/// Sends one record of an attempt: at the end of a zone's run, or when the attempt shows it
/// was not skipped (a zone deferred, or found ready) before any zone ran.
#[inline(always)]
fn compaction_record(attempt: &mut CompactAttempt, now: u64, bits: u32, status: u64) {
    let first = if attempt.counted == 0 {
        compaction::FIRST
    } else {
        0
    };
    attempt.counted = 1;
    attempt.last_ns = now;
    let state = InFlightStall {
        start_ns: attempt.start_ns,
        stall: StallKind::Compaction as u32,
        order: attempt.order,
        gfp_flags: attempt.gfp_flags,
        detail: bits | first,
        zones: attempt.zones,
        _pad: 0,
    };
    emit(&state, now.saturating_sub(attempt.start_ns), status);
}

/// `compaction:mm_compaction_try_to_compact_pages(order, gfp_mask, prio)`: an allocation
/// compacts directly, zone by zone.
#[btf_tracepoint(function = "mm_compaction_try_to_compact_pages")]
pub fn try_to_compact_pages(ctx: BtfTracePointContext) -> i32 {
    if !current_wanted() {
        return 0;
    }
    bump(&VM_COUNTS, vm_count::COMPACT_ATTEMPTS);
    let now = now_ns();
    let state = CompactAttempt {
        start_ns: now,
        zone_start_ns: 0,
        last_ns: now,
        order: ctx.arg(0),
        gfp_flags: ctx.arg(1),
        counted: 0,
        zones: zone_state(),
    };
    let tid = bpf_get_current_pid_tgid() as u32;
    if COMPACTING.insert(&tid, &state, 0).is_err() {
        bump(&STATS, stat::STALLS_DROPPED);
    }
    0
}

/// `compaction:mm_compaction_begin(cc, ...)`: one zone's compaction starts. Outside an attempt
/// (kcompactd, a compact_memory write) it is background work, not a stall.
#[btf_tracepoint(function = "mm_compaction_begin")]
pub fn compaction_begin(_ctx: BtfTracePointContext) -> i32 {
    let now = now_ns();
    if let Some(attempt) = attempt(now) {
        attempt.zone_start_ns = now;
        attempt.last_ns = now;
    }
    0
}

/// `compaction:mm_compaction_end(cc, start_pfn, end_pfn, sync, status)`.
#[btf_tracepoint(function = "mm_compaction_end")]
pub fn compaction_end(ctx: BtfTracePointContext) -> i32 {
    let now = now_ns();
    if let Some(attempt) = attempt(now)
        && attempt.zone_start_ns != 0
    {
        attempt.zone_start_ns = 0;
        let status: i32 = ctx.arg(4);
        compaction_record(attempt, now, compaction::ZONE_RUN, status as u64);
    }
    0
}

/// `compaction:mm_compaction_deferred(zone, order)`: a zone is skipped after recent failures;
/// the kernel counts the attempt as a stall all the same.
#[btf_tracepoint(function = "mm_compaction_deferred")]
pub fn compaction_deferred(_ctx: BtfTracePointContext) -> i32 {
    outcome(compaction::DEFERRED)
}

/// `compaction:mm_compaction_defer_reset(zone, order)`: a zone can serve the allocation (found
/// ready before a run, or after one, or the allocation got its page after compacting).
#[btf_tracepoint(function = "mm_compaction_defer_reset")]
pub fn compaction_defer_reset(_ctx: BtfTracePointContext) -> i32 {
    outcome(compaction::READY)
}

/// A zone of the attempt was deferred or found ready: the attempt was not skipped (its first
/// record counts one stall), and the record tells how it went.
#[inline(always)]
fn outcome(bits: u32) -> i32 {
    let now = now_ns();
    if let Some(attempt) = attempt(now) {
        compaction_record(attempt, now, bits, 0);
    }
    0
}

/// `compaction:mm_compaction_kcompactd_wake(nid, order, highest_zoneidx)`: kcompactd starts
/// compacting (woken by kswapd after it balanced a node for a high order); counted, as it is
/// background work rather than a stall.
#[btf_tracepoint(function = "mm_compaction_kcompactd_wake")]
pub fn kcompactd_wake(_ctx: BtfTracePointContext) -> i32 {
    bump(&VM_COUNTS, vm_count::KCOMPACTD_WAKES);
    0
}
