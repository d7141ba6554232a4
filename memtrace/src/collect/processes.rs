//! Which process a record belongs to. The kernel reuses pids, so a process is its pid and its
//! start time together: the kernel programs report every traced process's start and exit, and
//! a record is given to the incarnation of its pid that was alive when it happened. Processes
//! that started before tracing get their start time from /proc once, when first seen.
use std::collections::HashMap;

use crate::samples::ProcessExit;

/// How long an ended process is remembered: records sent late (a minor-fault batch that waited
/// on a quiet CPU) still find it.
const GRACE_NS: u64 = 10_000_000_000;

/// One life of a pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Incarnation {
    /// Its start time: the identity's second half, as first known.
    start_ns: u64,
    exit_ns: Option<u64>,
    /// The start came from /proc (a process older than the recording), not from the kernel.
    from_proc: bool,
}

/// The identity of a record's process: its start time, and its end if it has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub start_ns: u64,
    pub exit_ns: Option<u64>,
}

/// The live and recently ended processes, by pid.
#[derive(Debug, Default)]
pub struct ProcessTable {
    by_pid: HashMap<u32, Vec<Incarnation>>,
}

impl ProcessTable {
    /// A process started (forked) at `start_ns`.
    pub fn start(&mut self, pid: u32, start_ns: u64) {
        let lives = self.by_pid.entry(pid).or_default();
        if !lives.iter().any(|l| l.start_ns == start_ns) {
            lives.push(Incarnation {
                start_ns,
                exit_ns: None,
                from_proc: false,
            });
        }
    }

    /// A process ended at `exit_ns`; `start_ns` is the kernel's. The exit names the process by
    /// its identity as first known (for one older than the recording, the /proc start).
    pub fn exit(&mut self, pid: u32, start_ns: u64, exit_ns: u64) -> ProcessExit {
        let lives = self.by_pid.entry(pid).or_default();
        // The kernel's start matches a life exactly, or else it is the life first seen without a
        // start from the kernel that has not ended (only one process holds a pid at a time):
        // its /proc start, to the tick, or none when /proc was already gone.
        let exact = lives.iter().position(|l| l.start_ns == start_ns);
        let from_proc = || {
            lives
                .iter()
                .enumerate()
                .filter(|(_, l)| l.from_proc && l.exit_ns.is_none())
                .max_by_key(|(_, l)| l.start_ns)
                .map(|(i, _)| i)
        };
        let known = match exact.or_else(from_proc).map(|i| &mut lives[i]) {
            Some(life) => {
                life.exit_ns = Some(exit_ns);
                life.start_ns
            }
            None => {
                lives.push(Incarnation {
                    start_ns,
                    exit_ns: Some(exit_ns),
                    from_proc: false,
                });
                start_ns
            }
        };
        ProcessExit {
            pid,
            start_ns: known,
            exit_ns,
        }
    }

    /// The process `pid` was at `at_ns`: the life that contains that time, else the first
    /// that started after it (a record's time can precede the start it is sent after only by
    /// the batching of minor faults), else the latest. A pid never seen is a process that
    /// started before tracing: `lookup` gives its start time (0 when it cannot).
    pub fn identify(
        &mut self,
        pid: u32,
        at_ns: u64,
        lookup: impl FnOnce(u32) -> Option<u64>,
    ) -> Identity {
        let lives = self.by_pid.entry(pid).or_default();
        if lives.is_empty() {
            lives.push(Incarnation {
                start_ns: lookup(pid).unwrap_or(0),
                exit_ns: None,
                from_proc: true,
            });
        }
        let alive_at =
            |l: &&Incarnation| l.start_ns <= at_ns && l.exit_ns.is_none_or(|e| at_ns <= e);
        let life = lives
            .iter()
            .filter(alive_at)
            .max_by_key(|l| l.start_ns)
            .or_else(|| {
                lives
                    .iter()
                    .filter(|l| l.start_ns > at_ns)
                    .min_by_key(|l| l.start_ns)
            })
            .or_else(|| lives.iter().max_by_key(|l| l.start_ns))
            .copied()
            .unwrap_or(Incarnation {
                start_ns: 0,
                exit_ns: None,
                from_proc: true,
            });
        Identity {
            start_ns: life.start_ns,
            exit_ns: life.exit_ns,
        }
    }

    /// Forgets processes that ended more than the grace period before `now_ns`.
    pub fn prune(&mut self, now_ns: u64) {
        self.by_pid.retain(|_, lives| {
            lives.retain(|l| {
                l.exit_ns
                    .is_none_or(|e| now_ns.saturating_sub(e) < GRACE_NS)
            });
            !lives.is_empty()
        });
        // After a fork storm, the table's capacity goes back with its entries.
        if self.by_pid.capacity() > 4 * self.by_pid.len().max(1024) {
            self.by_pid.shrink_to_fit();
        }
    }

    /// Pids remembered (live or recently ended).
    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    /// Whether no pid is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_reused_pid_is_two_processes_told_apart_by_time() {
        let mut table = ProcessTable::default();
        table.start(42, S);
        let exit = table.exit(42, S, 2 * S);
        assert_eq!((exit.pid, exit.start_ns, exit.exit_ns), (42, S, 2 * S));
        table.start(42, 3 * S);
        let never = |_| panic!("no /proc lookup for a known pid");
        assert_eq!(table.identify(42, S + 5, never).start_ns, S);
        assert_eq!(
            table.identify(42, 2 * S, never),
            Identity {
                start_ns: S,
                exit_ns: Some(2 * S)
            }
        );
        assert_eq!(table.identify(42, 3 * S + 5, never).start_ns, 3 * S);
        // Between the two lives: a batch begun before the new start belongs to the new one.
        assert_eq!(table.identify(42, 2 * S + 5, never).start_ns, 3 * S);
    }

    #[test]
    fn a_process_from_before_tracing_is_looked_up_once() {
        let mut table = ProcessTable::default();
        assert_eq!(table.identify(7, 5 * S, |_| Some(123)).start_ns, 123);
        assert_eq!(
            table
                .identify(7, 6 * S, |_| panic!("looked up twice"))
                .start_ns,
            123
        );
        assert_eq!(table.identify(8, S, |_| None).start_ns, 0, "unknown start");
    }

    #[test]
    fn the_exit_of_a_process_older_than_the_recording_finds_its_proc_start() {
        let mut table = ProcessTable::default();
        // /proc gave the start to the clock tick; the kernel's exit says it to the nanosecond.
        assert_eq!(table.identify(9, 5 * S, |_| Some(S)).start_ns, S);
        let exit = table.exit(9, S + 7_654_321, 6 * S);
        assert_eq!(exit.start_ns, S, "the identity as first known");
        assert_eq!(
            table.identify(9, 6 * S - 1, |_| panic!("known")),
            Identity {
                start_ns: S,
                exit_ns: Some(6 * S)
            },
            "late records still find it"
        );
        // That one has ended: a second exit is of another process.
        assert_eq!(table.exit(9, 3 * S, 7 * S).start_ns, 3 * S);
    }

    #[test]
    fn a_process_gone_before_its_first_record_was_read_is_still_one_process() {
        let mut table = ProcessTable::default();
        // /proc/PID was already gone when its first records were decoded: start unknown.
        assert_eq!(table.identify(11, 5 * S, |_| None).start_ns, 0);
        let exit = table.exit(11, 4 * S, 6 * S);
        assert_eq!(
            exit.start_ns, 0,
            "the exit names the process as first known"
        );
        assert_eq!(
            table.identify(11, 5 * S + 1, |_| panic!("known")),
            Identity {
                start_ns: 0,
                exit_ns: Some(6 * S)
            }
        );
    }

    #[test]
    fn ended_processes_are_forgotten_after_the_grace_period() {
        let mut table = ProcessTable::default();
        table.start(1, S);
        table.exit(1, S, 2 * S);
        table.start(2, S);
        table.prune(2 * S + GRACE_NS - 1);
        assert_eq!(table.len(), 2);
        table.prune(2 * S + GRACE_NS);
        assert_eq!(table.len(), 1, "the live one stays");
        assert!(!table.is_empty());
    }
}
