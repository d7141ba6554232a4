//! Reclaim and compaction stalls of tasks: begin/end tracepoint pairs in the stalling task,
//! matched by thread id (reclaim sleeps, so there is no per-CPU shortcut here; these events are
//! rare next to faults). Throttling arrives complete, with the delay the kernel measured.
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
    },
    macros::{btf_tracepoint, map},
    maps::HashMap,
    programs::BtfTracePointContext,
};
use memtrace_common::{EventKind, InFlightStall, StallEvent, StallKind, stat};

use crate::{
    filter::current_wanted,
    kernel::{off, read_at},
    maps::{EVENTS, LOST, STATS, bump, wakeup_flags},
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
    read_at::<u32>(task, off!(task_flags)).is_some_and(|flags| flags & PF_KTHREAD != 0)
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
        _pad: 0,
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
    };
    emit(&state, latency_ns, 0);
    0
}

/// `compaction:mm_compaction_begin(cc, ...)`: compaction of one zone; in a user task this is
/// direct compaction on behalf of its allocation.
#[btf_tracepoint(function = "mm_compaction_begin")]
pub fn compaction_begin(_ctx: BtfTracePointContext) -> i32 {
    // kcompactd compacts in the background; only an allocating task's compaction is a stall.
    if !is_kthread() {
        begin(StallKind::Compaction, -1, 0, 0);
    }
    0
}

/// `compaction:mm_compaction_end(cc, start_pfn, end_pfn, sync, status)`.
#[btf_tracepoint(function = "mm_compaction_end")]
pub fn compaction_end(ctx: BtfTracePointContext) -> i32 {
    let status: i32 = ctx.arg(4);
    end(StallKind::Compaction, status as u64);
    0
}
