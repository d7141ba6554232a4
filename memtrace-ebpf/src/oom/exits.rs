//! A victim's exit, whichever comes first: the exit or the kill's mark.
//!
//! `__oom_kill_process()` sends the victim SIGKILL, then marks it (`oom:mark_victim`), both
//! under the victim's task lock in the trigger's context. The victim, woken on another CPU, can
//! reach `sched:sched_process_exit` before the mark: the tracepoint fires before `exit_mm()`,
//! the first step of an exit that waits for that lock. An exit that looked for a mark then
//! found none, and was lost (3 runs in 4 when the victim was not the trigger). So the exit and
//! the mark meet, whatever their order:
//!
//! - `signal:signal_generate` of a kernel SIGKILL (`SEND_SIG_PRIV`: the OOM killer's, and the
//!   few other kills the kernel sends itself; never kill(2)'s) puts the target process in
//!   `OOM_DOOMED`. It runs under the target's siglock, which the target must take to act on
//!   the signal, so the entry is there before the target's exit looks for it.
//! - The exit of a doomed process and the mark of a victim meet in `OOM_MEET`, keyed by the
//!   process (tgid and start time, as pids are reused). Each puts its side there only if the
//!   key is absent (`BPF_NOEXIST`, atomic under the map's bucket lock), so exactly one of the
//!   two finds the other's side, and that one has the exit record sent, with the exit's own
//!   thread and time. The mark sends the kill record before it meets, so the kill is always
//!   first on the ring.
//!
//! This is exact and bounded where the alternatives were not: remembering every exit for a
//! while costs a map update per exit on the machine and is lost to churn; a window of recent
//! exits in userspace needs them all on the ring. Here an ordinary exit costs one lookup in
//! `OOM_DOOMED`, and only when a whole process ends; entries exist only for processes the
//! kernel itself SIGKILLed. Both maps are LRU, so memory is fixed whatever the churn: entries
//! of kernel kills that were not OOM kills age out, and an entry a kill still needs is evicted
//! only if 1 024 other kernel SIGKILLs land before its victim exits. The one exit still missed
//! is that of a victim that began to exit on its own in the microseconds between the OOM
//! killer's last look at it and its SIGKILL (its exit then precedes the SIGKILL's hook), or any
//! exit before the mark when the SIGKILL hook did not attach.
use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_ns, macros::map, maps::LruHashMap};

use crate::kernel::{off, peek, read_at};

/// Entries of each map: kernel SIGKILLs whose target has not exited yet (or never will).
const ENTRIES: u32 = 1024;

/// A process: pids are reused, a pid and a start time are not.
#[repr(C)]
#[derive(Clone, Copy)]
struct ProcessKey {
    tgid: u32,
    _pad: u32,
    start_ns: u64,
}

/// `Side::side` of the mark.
const MARK: u32 = 1;
/// `Side::side` of the exit.
const EXIT: u32 = 2;

/// One side of a meeting: the mark, or the exit with its thread and time.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Side {
    side: u32,
    /// The exiting thread (the process's last).
    pub pid: u32,
    pub ts_ns: u64,
}

/// Processes the kernel SIGKILLed itself: tgid -> start time.
#[map(name = "OOM_DOOMED")]
static OOM_DOOMED: LruHashMap<u32, u64> = LruHashMap::with_max_entries(ENTRIES, 0);

/// Where a victim's exit and its mark meet.
#[map(name = "OOM_MEET")]
static OOM_MEET: LruHashMap<ProcessKey, Side> = LruHashMap::with_max_entries(ENTRIES, 0);

/// A task's process start time: its group leader's `start_time`, as process records carry it.
#[inline(always)]
fn process_start_ns(task: u64) -> u64 {
    let leader = read_at::<u64>(task, off!(task_group_leader)).unwrap_or(task);
    peek(leader, off!(task_start_time))
}

/// A kernel SIGKILL to `task`: its process may be an OOM victim whose exit beats the mark.
#[inline(always)]
pub fn doomed(task: u64) {
    if let Some(tgid) = read_at::<u32>(task, off!(task_tgid)) {
        let _ = OOM_DOOMED.insert(&tgid, &process_start_ns(task), 0);
    }
}

/// The last thread `pid` of process `tgid` (`task`) exits: if the kernel SIGKILLed it, it
/// meets its mark. Returns the exit when the mark was there first (the exit is to be sent).
#[inline(always)]
pub fn exited(task: u64, tgid: u32, pid: u32) -> Option<Side> {
    // SAFETY: the value is copied out at once.
    let start_ns = unsafe { OOM_DOOMED.get(&tgid) }.copied()?;
    // The process with this tgid is gone, whichever one the entry was for.
    let _ = OOM_DOOMED.remove(&tgid);
    if start_ns != process_start_ns(task) {
        return None;
    }
    let key = ProcessKey {
        tgid,
        _pad: 0,
        start_ns,
    };
    let exit = Side {
        side: EXIT,
        pid,
        // SAFETY: plain helper call.
        ts_ns: unsafe { bpf_ktime_get_ns() },
    };
    meet(&key, &exit).map(|_| exit)
}

/// The victim `task` of process `tgid` is marked (the kill record is already sent). Returns
/// its exit when the exit was there first (it is to be sent now).
#[inline(always)]
pub fn marked(task: u64, tgid: u32, now: u64) -> Option<Side> {
    let start_ns = process_start_ns(task);
    // Without the SIGKILL hook, an exit after the mark still finds the process here.
    let _ = OOM_DOOMED.insert(&tgid, &start_ns, u64::from(BPF_NOEXIST));
    let key = ProcessKey {
        tgid,
        _pad: 0,
        start_ns,
    };
    let mark = Side {
        side: MARK,
        pid: 0,
        ts_ns: now,
    };
    meet(&key, &mark)
}

/// Puts `side` in `OOM_MEET` unless the other side is there first: then takes that one out
/// and returns it. A second mark of the same process (the kernel marks an exiting victim
/// again rather than kill another) leaves the first waiting.
#[inline(always)]
fn meet(key: &ProcessKey, side: &Side) -> Option<Side> {
    if OOM_MEET.insert(key, side, u64::from(BPF_NOEXIST)).is_ok() {
        return None;
    }
    // SAFETY: the value is copied out at once.
    let other = unsafe { OOM_MEET.get(key) }.copied()?;
    if other.side == side.side {
        return None;
    }
    let _ = OOM_MEET.remove(key);
    Some(other)
}
