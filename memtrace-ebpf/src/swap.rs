//! Swap traffic and kswapd activity: the machine-wide context of stalls. Not filtered: a
//! traced process's pages are swapped out by kswapd or by other tasks' reclaim.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use memtrace_common::{EventKind, KswapdEvent, KswapdOp, SwapEvent};

use crate::{
    kernel::{css_memcg_id, off},
    maps::{EVENTS, LOST, bump, wakeup_flags},
};

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() }
}

/// The inode of a `struct mem_cgroup`'s cgroup directory (memcg->css.cgroup->kn->id).
#[inline(always)]
fn memcg_id(memcg: u64) -> u64 {
    css_memcg_id(memcg + u64::from(off!(memcg_css)))
}

/// Called from `count_memcg_events` for PSWPIN/PSWPOUT: who moved how many pages of which
/// memory cgroup.
#[inline(always)]
pub fn swap_traffic(memcg: u64, dir: u32, pages: u64) {
    let Some(mut entry) = EVENTS.reserve::<SwapEvent>(0) else {
        bump(&LOST, EventKind::Swap as u32);
        return;
    };
    entry.write(SwapEvent {
        kind: EventKind::Swap as u32,
        dir,
        tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        pages: pages as u32,
        memcg_id: memcg_id(memcg),
        ts_ns: now_ns(),
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(wakeup_flags());
}

#[inline(always)]
fn kswapd_event(op: u32, nid: i32, zid: i32, order: i32, gfp_flags: u32) {
    let Some(mut entry) = EVENTS.reserve::<KswapdEvent>(0) else {
        bump(&LOST, EventKind::Kswapd as u32);
        return;
    };
    entry.write(KswapdEvent {
        kind: EventKind::Kswapd as u32,
        op,
        nid: nid as u32,
        order,
        ts_ns: now_ns(),
        tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        gfp_flags,
        comm: bpf_get_current_comm().unwrap_or_default(),
        zid,
        _pad: 0,
    });
    entry.submit(wakeup_flags());
}

/// `vmscan:mm_vmscan_kswapd_wake(nid, zid, order)`, in kswapd.
#[btf_tracepoint(function = "mm_vmscan_kswapd_wake")]
pub fn kswapd_wake(ctx: BtfTracePointContext) -> i32 {
    kswapd_event(KswapdOp::Wake as u32, ctx.arg(0), ctx.arg(1), ctx.arg(2), 0);
    0
}

/// `vmscan:mm_vmscan_kswapd_sleep(nid)`, in kswapd.
#[btf_tracepoint(function = "mm_vmscan_kswapd_sleep")]
pub fn kswapd_sleep(ctx: BtfTracePointContext) -> i32 {
    kswapd_event(KswapdOp::Sleep as u32, ctx.arg(0), -1, -1, 0);
    0
}

/// `vmscan:mm_vmscan_wakeup_kswapd(nid, zid, order, gfp_flags)`, in the allocating task.
#[btf_tracepoint(function = "mm_vmscan_wakeup_kswapd")]
pub fn wakeup_kswapd(ctx: BtfTracePointContext) -> i32 {
    kswapd_event(
        KswapdOp::WokenBy as u32,
        ctx.arg(0),
        ctx.arg(1),
        ctx.arg(2),
        ctx.arg(3),
    );
    0
}
