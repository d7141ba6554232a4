//! Where a workload thread's time went over a window, by the scheduler's own accounting:
//! on a CPU (`sum_exec_runtime`), runnable and waiting for one (`sched_info.run_delay`), and
//! the rest of the wall-clock time asleep. `/proc/thread-self/schedstat` holds the first two.
//!
//! In a VM the hypervisor also takes CPUs away (steal): the scheduler leaves stolen time out of
//! both clocks, so time stolen while the thread ran counts here as asleep. The machine's steal
//! over the window (`/proc/stat`, to the clock tick) comes with the figures, so a reader can
//! bound it.
//!
//! Delay accounting's block I/O wait would name the sleep's cause, but on 6.18 it is not
//! reliable when CPUs are contended: with two busy loops beside a sequential read it reported
//! 1.3 s of I/O wait in a read whose thread slept 0.17 s in all (the sched_switch and
//! sched_wakeup tracepoints, measured with bpftrace), so the tests hold fault time against
//! these figures instead.
use crate::collect::machine::monotonic_ns;

/// The calling thread's clocks at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadClock {
    wall_ns: u64,
    on_cpu_ns: u64,
    run_delay_ns: u64,
    /// The machine's steal so far, all CPUs, in clock ticks.
    steal_ticks: u64,
}

/// A window's time, split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThreadTime {
    pub wall_ns: u64,
    pub on_cpu_ns: u64,
    /// Waiting runnable for a CPU.
    pub run_delay_ns: u64,
    /// Neither running nor runnable: blocked on I/O, a lock, a sleep (and stolen time).
    pub asleep_ns: u64,
    /// Time the hypervisor stole from all the machine's CPUs over the window, rounded down to
    /// the clock tick (`tick_ns`): at most this much of `asleep_ns` is stolen.
    #[serde(default)]
    pub steal_ns: u64,
    /// The clock tick `steal_ns` is counted in.
    #[serde(default)]
    pub tick_ns: u64,
}

/// Reading the wall clock on both sides of the schedstat read; a pair further apart than this
/// was preempted in between, which would misplace the preemption, so it is read again.
const BRACKET_NS: u64 = 100_000;

impl ThreadClock {
    /// Reads the calling thread's clocks.
    pub fn now() -> std::io::Result<Self> {
        let steal_ticks = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| parse_steal_ticks(&text))
            .unwrap_or(0);
        let mut best: Option<(u64, Self)> = None;
        for _ in 0..100 {
            let before = monotonic_ns();
            let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
            let after = monotonic_ns();
            let (on_cpu_ns, run_delay_ns) = parse_schedstat(&text)
                .ok_or_else(|| std::io::Error::other("unexpected /proc/thread-self/schedstat"))?;
            let clock = Self {
                wall_ns: before + (after - before) / 2,
                on_cpu_ns,
                run_delay_ns,
                steal_ticks,
            };
            let spread = after - before;
            if spread <= BRACKET_NS {
                return Ok(clock);
            }
            if best.is_none_or(|(s, _)| spread < s) {
                best = Some((spread, clock));
            }
        }
        Ok(best.expect("at least one reading").1)
    }

    /// The time from `earlier` to `self`.
    pub fn since(&self, earlier: &Self) -> ThreadTime {
        let wall_ns = self.wall_ns.saturating_sub(earlier.wall_ns);
        let on_cpu_ns = self.on_cpu_ns.saturating_sub(earlier.on_cpu_ns);
        let run_delay_ns = self.run_delay_ns.saturating_sub(earlier.run_delay_ns);
        let tick_ns = tick_ns();
        ThreadTime {
            wall_ns,
            on_cpu_ns,
            run_delay_ns,
            asleep_ns: wall_ns.saturating_sub(on_cpu_ns + run_delay_ns),
            steal_ns: self.steal_ticks.saturating_sub(earlier.steal_ticks) * tick_ns,
            tick_ns,
        }
    }
}

impl ThreadTime {
    /// The sum of two windows.
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            wall_ns: self.wall_ns + other.wall_ns,
            on_cpu_ns: self.on_cpu_ns + other.on_cpu_ns,
            run_delay_ns: self.run_delay_ns + other.run_delay_ns,
            asleep_ns: self.asleep_ns + other.asleep_ns,
            steal_ns: self.steal_ns + other.steal_ns,
            tick_ns: self.tick_ns.max(other.tick_ns),
        }
    }
}

/// The length of `/proc/stat`'s clock tick, ns.
fn tick_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|&hz| hz > 0)
        .map_or(10_000_000, |hz| 1_000_000_000 / hz)
}

/// The steal of all CPUs, in ticks: the 8th figure of `/proc/stat`'s `cpu` line.
fn parse_steal_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    line.split_whitespace().nth(8)?.parse().ok()
}

/// `sum_exec_runtime run_delay pcount` → the first two, in ns.
fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_gives_cpu_time_and_run_delay() {
        assert_eq!(parse_schedstat("1500 300 7\n"), Some((1500, 300)));
        assert_eq!(parse_schedstat("1500"), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    #[test]
    fn the_time_neither_running_nor_runnable_is_asleep() {
        let at = |wall_ns, on_cpu_ns, run_delay_ns, steal_ticks| ThreadClock {
            wall_ns,
            on_cpu_ns,
            run_delay_ns,
            steal_ticks,
        };
        let time = at(10_000, 3_000, 1_000, 9).since(&at(1_000, 1_000, 500, 7));
        let tick_ns = tick_ns();
        assert_eq!(
            time,
            ThreadTime {
                wall_ns: 9_000,
                on_cpu_ns: 2_000,
                run_delay_ns: 500,
                asleep_ns: 6_500,
                steal_ns: 2 * tick_ns,
                tick_ns,
            }
        );
        let twice = time.plus(&time);
        assert_eq!((twice.asleep_ns, twice.steal_ns), (13_000, 4 * tick_ns));
    }

    #[test]
    fn steal_is_the_eighth_figure_of_the_cpu_line() {
        let stat = "cpu  235251 0 141488 1256020 1768 0 905 899 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_steal_ticks(stat), Some(899));
        assert_eq!(parse_steal_ticks("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(parse_steal_ticks("cpu  1 2 3\n"), None);
    }

    #[test]
    fn a_sleep_of_this_thread_is_seen_as_asleep() {
        let start = ThreadClock::now().expect("schedstat");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let time = ThreadClock::now().expect("schedstat").since(&start);
        assert!(time.asleep_ns >= 15_000_000, "{time:?}");
        assert_eq!(
            time.wall_ns,
            time.on_cpu_ns + time.run_delay_ns + time.asleep_ns
        );
    }
}
