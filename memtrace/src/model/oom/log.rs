//! Every OOM kill of a recording, completed as the victim's exit and the reaper's steps arrive.
use memtrace_common::oom::{AftermathOp, OomAftermathEvent};

use super::{KernelLog, OomKill, kmsg_agrees};
use crate::samples::oom::{KmsgOom, OomInterval};

/// How long a kill waits for its victim's exit before the live view shows it anyway.
const LIVE_GRACE_NS: u64 = 1_000_000_000;

/// The kills so far.
#[derive(Clone, Debug, Default)]
pub struct OomLog {
    pub kills: Vec<OomKill>,
    /// `oom:mark_victim` on a task that was exiting anyway: the OOM killer let it finish
    /// instead of killing anything (no SIGKILL, no `oom_kill` count).
    pub marks_without_kill: u64,
    /// Kills already handed to the live view.
    shown: Vec<bool>,
}

impl OomLog {
    /// Adds one interval's OOM activity, in the order it happened within the interval: kills,
    /// then what followed them, then the kernel's lines.
    pub fn apply(&mut self, interval: &OomInterval) {
        for sample in &interval.kills {
            self.add(OomKill::from_sample(sample));
        }
        for event in &interval.aftermath {
            self.apply_aftermath(event);
        }
        self.apply_kmsg(&interval.kernel_log);
        self.marks_without_kill += interval.marks_without_kill;
    }

    /// Adds a kill.
    pub fn add(&mut self, kill: OomKill) {
        self.kills.push(kill);
        self.shown.push(false);
    }

    /// Places an exit or reaper step on the latest kill of its task before it. The kernel
    /// sends a victim's exit only once it has met the victim's kill, and after the kill record,
    /// whichever came first; its time is the exit's own, never before the kill (the SIGKILL).
    pub fn apply_aftermath(&mut self, event: &OomAftermathEvent) {
        // Decoding refused unknown steps; one in a recording is ignored.
        let Ok(op) = AftermathOp::try_from(event.op) else {
            return;
        };
        let matches = |kill: &OomKill| match op {
            AftermathOp::Exit => kill.victim.tgid == event.tgid,
            _ => kill.victim.pid == event.pid || kill.victim.tgid == event.pid,
        };
        let Some(kill) = self
            .kills
            .iter_mut()
            .rev()
            .find(|k| matches(k) && k.kill_ns <= event.ts_ns)
        else {
            return;
        };
        let ms = Some(event.ts_ns.saturating_sub(kill.kill_ns) as f64 / 1e6);
        let after = &mut kill.aftermath;
        match op {
            AftermathOp::Exit => after.exit_ms = ms,
            AftermathOp::WakeReaper => after.reaper_woken_ms = ms,
            AftermathOp::StartReaping => after.reaping_started_ms = ms,
            AftermathOp::FinishReaping => after.reaping_finished_ms = ms,
            AftermathOp::SkipReaping => after.reaping_skipped_ms = ms,
        }
    }

    /// Joins kernel-log lines to the kills that lack one, by victim pid.
    pub fn apply_kmsg(&mut self, lines: &[KmsgOom]) {
        for line in lines {
            if let Some(kill) = self.kills.iter_mut().rev().find(|k| {
                k.kernel_log.is_none() && (k.victim.pid == line.pid || k.victim.tgid == line.pid)
            }) {
                kill.kernel_log = Some(KernelLog {
                    agrees: kmsg_agrees(line, kill.domain.constraint),
                    line: line.clone(),
                });
            }
        }
    }

    /// Kills to show live now: their victim has exited, or a second has passed (or `flush`).
    pub fn take_ready(&mut self, now_ns: u64, flush: bool) -> Vec<&OomKill> {
        let mut ready = Vec::new();
        for (kill, shown) in self.kills.iter().zip(self.shown.iter_mut()) {
            let waited = now_ns.saturating_sub(kill.kill_ns) >= LIVE_GRACE_NS;
            if !*shown && (flush || waited || kill.aftermath.exit_ms.is_some()) {
                *shown = true;
                ready.push(kill);
            }
        }
        ready
    }
}
