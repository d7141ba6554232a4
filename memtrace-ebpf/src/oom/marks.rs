//! Facts the kill record needs from just before the kill: the OOM killer's SIGKILL (a real
//! kill, not a task exiting anyway) and the trigger's latest reclaim (memcg or global).
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use memtrace_common::oom::OomReclaim;

use super::{OOM_RECLAIM, OOM_SIGKILL, exits};
use crate::kernel::{off, peek};

/// `SEND_SIG_PRIV`: the siginfo pointer the kernel uses for its own signals, OOM kills included.
const SEND_SIG_PRIV: u64 = 1;
const SIGKILL: i32 = 9;

/// `signal:signal_generate(sig, info, task, group, result)`: remembers the kernel's own SIGKILLs,
/// so that a mark can be told apart from a task that was exiting anyway (no kill), and so that
/// the target's exit is kept for a mark that comes after it (see `exits`).
#[btf_tracepoint(function = "signal_generate")]
pub fn oom_signal_generate(ctx: BtfTracePointContext) -> i32 {
    let sig: i32 = ctx.arg(0);
    let info: u64 = ctx.arg(1);
    if sig != SIGKILL || info != SEND_SIG_PRIV {
        return 0;
    }
    let target: u64 = ctx.arg(2);
    exits::doomed(target);
    let tgid = peek::<u32>(target, off!(task_tgid));
    if let Some(slot) = OOM_SIGKILL.get_ptr_mut(0) {
        let sender = bpf_get_current_pid_tgid() as u32;
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *slot = [u64::from(sender), u64::from(tgid), bpf_ktime_get_ns()] };
    }
    0
}

fn mark_reclaim(kind: u32) {
    let tid = bpf_get_current_pid_tgid() as u32;
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let _ = OOM_RECLAIM.insert(&tid, &[u64::from(kind), now], 0);
}

/// `vmscan:mm_vmscan_direct_reclaim_begin`: the page allocator's slow path, which precedes a
/// global (or cpuset/mempolicy) OOM in the same task.
#[btf_tracepoint(function = "mm_vmscan_direct_reclaim_begin")]
pub fn oom_direct_reclaim(_ctx: BtfTracePointContext) -> i32 {
    mark_reclaim(OomReclaim::Direct as u32);
    0
}

/// `vmscan:mm_vmscan_memcg_reclaim_begin`: a charge over a memcg limit, which precedes a memcg
/// OOM in the same task.
#[btf_tracepoint(function = "mm_vmscan_memcg_reclaim_begin")]
pub fn oom_memcg_reclaim(_ctx: BtfTracePointContext) -> i32 {
    mark_reclaim(OomReclaim::Memcg as u32);
    0
}
