//! Process lifetime: a record when a traced process starts and when it ends, so userspace tells
//! apart the processes that reuse a pid; and, as every thread exits, the per-thread state of the
//! other programs is dropped, so their maps only hold live threads.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel_buf},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use memtrace_common::{COMM_LEN, EventKind, ProcessEvent, ProcessOp};

use crate::{
    filter::{current_wanted, on_exit, on_fork},
    kernel::{off, peek, read_at},
    maps::{EVENTS, LOST, bump, wakeup_flags},
};

/// Sends one process record.
#[inline(always)]
fn send(op: ProcessOp, tgid: u32, parent_tgid: u32, task: u64, start_ns: u64) {
    let Some(mut entry) = EVENTS.reserve::<ProcessEvent>(0) else {
        bump(&LOST, EventKind::Process as u32);
        return;
    };
    let mut comm = [0u8; COMM_LEN];
    // The task's own name (a child's is its parent's until it execs).
    let at = task + u64::from(off!(task_comm));
    // SAFETY: the helper checks the address and fails cleanly; a failure leaves zeros.
    let _ = unsafe { bpf_probe_read_kernel_buf(at as *const u8, &mut comm) };
    entry.write(ProcessEvent {
        kind: EventKind::Process as u32,
        op: op as u32,
        tgid,
        parent_tgid,
        start_ns,
        // SAFETY: plain helper call.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        comm,
    });
    entry.submit(wakeup_flags());
}

/// `sched:sched_process_fork(parent, child)`, in the parent: a new thread group starts.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    let child: u64 = ctx.arg(1);
    let (Some(child_pid), Some(child_tgid)) = (
        read_at::<u32>(child, off!(task_pid)),
        read_at::<u32>(child, off!(task_tgid)),
    ) else {
        return 0;
    };
    if child_pid != child_tgid {
        return 0; // a new thread of an existing process
    }
    let parent_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if on_fork(parent_tgid, child_tgid) {
        let start_ns = peek::<u64>(child, off!(task_start_time));
        send(ProcessOp::Start, child_tgid, parent_tgid, child, start_ns);
    }
    0
}

/// `sched:sched_process_exit(task, group_dead)`, in the exiting thread.
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    crate::faults::forget_thread(tid);
    crate::reclaim::forget_thread(tid);
    let group_dead: u64 = ctx.arg(1);
    if group_dead & 0xff == 0 || !current_wanted() {
        return 0;
    }
    let tgid = (pid_tgid >> 32) as u32;
    let task: u64 = ctx.arg(0);
    let leader = read_at::<u64>(task, off!(task_group_leader)).unwrap_or(task);
    let start_ns = peek::<u64>(leader, off!(task_start_time));
    on_exit(tgid);
    send(ProcessOp::Exit, tgid, 0, task, start_ns);
    0
}
