//! What happens to a victim after the kill: its exit and the OOM reaper's steps, each one small
//! record on the OOM ring buffer.
use aya_ebpf::{
    bindings::BPF_RB_FORCE_WAKEUP,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use memtrace_common::{
    EventKind,
    oom::{AftermathOp, OomAftermathEvent},
};

use super::{OOM_EVENTS, exits};
use crate::maps::{LOST, bump};

/// Sends one aftermath record, of `ts_ns` (`bpf_ktime_get_ns()`).
pub(super) fn aftermath(op: u32, pid: u32, tgid: u32, ts_ns: u64) {
    let Some(mut entry) = OOM_EVENTS.reserve::<OomAftermathEvent>(0) else {
        bump(&LOST, EventKind::OomAftermath as u32);
        return;
    };
    entry.write(OomAftermathEvent {
        kind: EventKind::OomAftermath as u32,
        op,
        pid,
        tgid,
        ts_ns,
    });
    entry.submit(BPF_RB_FORCE_WAKEUP.into());
}

/// `sched:sched_process_exit(task, group_dead)`: the last thread of a process is gone. If the
/// kernel SIGKILLed it, it meets its mark (see `exits`); any other exit costs one lookup, and
/// the exits of threads that leave their process behind nothing.
#[btf_tracepoint(function = "sched_process_exit")]
pub fn oom_victim_exit(ctx: BtfTracePointContext) -> i32 {
    let group_dead: u64 = ctx.arg(1);
    if group_dead & 0xff == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if let Some(exit) = exits::exited(ctx.arg(0), tgid, pid_tgid as u32) {
        aftermath(AftermathOp::Exit as u32, exit.pid, tgid, exit.ts_ns);
    }
    0
}

macro_rules! reaper_hook {
    ($name:ident, $tracepoint:literal, $op:expr) => {
        /// `oom:` reaper tracepoint carrying the victim's pid.
        #[btf_tracepoint(function = $tracepoint)]
        pub fn $name(ctx: BtfTracePointContext) -> i32 {
            let pid: i32 = ctx.arg(0);
            // SAFETY: plain helper call.
            aftermath($op, pid as u32, 0, unsafe { bpf_ktime_get_ns() });
            0
        }
    };
}

reaper_hook!(
    oom_wake_reaper,
    "wake_reaper",
    AftermathOp::WakeReaper as u32
);
reaper_hook!(
    oom_start_reaping,
    "start_task_reaping",
    AftermathOp::StartReaping as u32
);
reaper_hook!(
    oom_finish_reaping,
    "finish_task_reaping",
    AftermathOp::FinishReaping as u32
);
reaper_hook!(
    oom_skip_reaping,
    "skip_task_reaping",
    AftermathOp::SkipReaping as u32
);
