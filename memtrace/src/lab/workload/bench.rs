//! Workloads of `memtrace bench`: a fault-heavy loop timed from inside (so process start-up and
//! the tracer's own start never count), and a tree of short-lived processes that each fault a
//! little (to make memtrace track many processes).
use std::time::{Duration, Instant};

use super::{FaultCounters, PAGE, mapping::Mapping};

/// What the fault loop does: map `mib`, touch every page once, unmap; repeat.
#[derive(Clone, Debug)]
pub struct ChurnPlan {
    /// Size of each mapping.
    pub mib: usize,
    /// Timed repetitions (one more, untimed, warms up first).
    pub iterations: u64,
    /// When set, repeat until this much time has passed instead of counting iterations.
    pub duration: Option<Duration>,
    /// Read instead of write: maps the shared zero page, the cheapest fault there is.
    pub read: bool,
}

/// The fault loop's result, as measured inside the process with CLOCK_MONOTONIC.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChurnOutcome {
    pub pid: u32,
    /// Timed repetitions done.
    pub iterations: u64,
    /// Faults the kernel counted for the timed part (minflt + majflt).
    pub faults: u64,
    /// Wall time of the timed part.
    pub elapsed_ns: u64,
    /// Faults of the whole process up to the end of the loop (start-up and warm-up included):
    /// what a tracer running all along should have seen.
    pub process_faults: u64,
}

impl ChurnOutcome {
    /// Mean time per fault, mapping and unmapping included; 0 without faults.
    pub fn ns_per_fault(&self) -> f64 {
        if self.faults == 0 {
            return 0.0;
        }
        self.elapsed_ns as f64 / self.faults as f64
    }
}

/// Runs the fault loop.
pub fn churn(plan: &ChurnPlan) -> std::io::Result<ChurnOutcome> {
    check_page_size()?;
    let len = plan.mib << 20;
    // Warm-up: page tables, allocator and caches settle before the clock starts.
    churn_once(len, plan.read)?;
    let before = FaultCounters::read("self")?;
    let start = Instant::now();
    let mut iterations = 0;
    loop {
        let done = match plan.duration {
            Some(limit) => start.elapsed() >= limit,
            None => iterations >= plan.iterations,
        };
        if done {
            break;
        }
        churn_once(len, plan.read)?;
        iterations += 1;
    }
    let elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let after = FaultCounters::read("self")?;
    let counted = after.since(&before);
    Ok(ChurnOutcome {
        pid: std::process::id(),
        iterations,
        faults: counted.minflt + counted.majflt,
        elapsed_ns,
        process_faults: after.minflt + after.majflt,
    })
}

/// What the process tree did.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpawnOutcome {
    pub pid: u32,
    /// Children that ran and exited cleanly.
    pub processes: u64,
    pub elapsed_ns: u64,
}

/// Forks `processes` children one after another; each touches `pages` fresh pages and exits.
pub fn spawn_tree(processes: u64, pages: usize) -> std::io::Result<SpawnOutcome> {
    check_page_size()?;
    let start = Instant::now();
    let mut clean = 0;
    for _ in 0..processes {
        // SAFETY: the child only calls async-signal-safe functions (mmap, stores, _exit), which
        // is what fork allows in a process that may have other threads.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            let code = i32::from(churn_once(pages * PAGE, false).is_err());
            // SAFETY: leaves the child at once, without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        clean += u64::from(reap(pid)?);
    }
    Ok(SpawnOutcome {
        pid: std::process::id(),
        processes: clean,
        elapsed_ns: u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
    })
}

/// What the active processes did.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActiveOutcome {
    pub pid: u32,
    /// Children that ran to the end and exited cleanly.
    pub processes: u64,
    pub elapsed_ns: u64,
}

/// Forks `processes` children that all live for `duration`, each touching `pages` fresh pages
/// once a second: that many processes active in every interval of a recording.
pub fn active(processes: u64, pages: usize, duration: Duration) -> std::io::Result<ActiveOutcome> {
    check_page_size()?;
    let start = Instant::now();
    let mut children = Vec::new();
    for _ in 0..processes {
        // SAFETY: as in `spawn_tree`; the child also calls nanosleep and clock_gettime, both
        // async-signal-safe.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let err = std::io::Error::last_os_error();
            for child in &children {
                // SAFETY: our own children.
                unsafe { libc::kill(*child, libc::SIGKILL) };
            }
            return Err(err);
        }
        if pid == 0 {
            // SAFETY: a forked child: the tick loop only maps, touches, sleeps, and leaves.
            unsafe { libc::_exit(tick_until(start + duration, pages)) };
        }
        children.push(pid);
    }
    let mut clean = 0;
    for pid in children {
        clean += u64::from(reap(pid)?);
    }
    Ok(ActiveOutcome {
        pid: std::process::id(),
        processes: clean,
        elapsed_ns: u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
    })
}

/// Touches `pages` fresh pages once a second until `end`; the exit status.
fn tick_until(end: Instant, pages: usize) -> i32 {
    while Instant::now() < end {
        if churn_once(pages * PAGE, false).is_err() {
            return 1;
        }
        let left = end.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_secs(1)));
    }
    0
}

/// Waits for a child; true if it exited with status 0.
fn reap(pid: libc::pid_t) -> std::io::Result<bool> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn check_page_size() -> std::io::Result<()> {
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize != PAGE {
        return Err(std::io::Error::other(
            "the bench workloads assume 4 KiB pages",
        ));
    }
    Ok(())
}

/// Maps `len` bytes of anonymous memory without huge pages, touches each page (reading or
/// writing), unmaps.
fn churn_once(len: usize, read: bool) -> std::io::Result<()> {
    let map = Mapping::anonymous(len)?;
    std::hint::black_box(map.touch_pages(!read));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_counts_one_fault_per_page() {
        let plan = ChurnPlan {
            mib: 1,
            iterations: 3,
            duration: None,
            read: false,
        };
        let outcome = churn(&plan).expect("churn");
        assert_eq!(outcome.iterations, 3);
        // 256 pages per MiB; a few extra faults (stack, allocator) may land in the window.
        assert!(outcome.faults >= 3 * 256, "{outcome:?}");
        assert!(outcome.ns_per_fault() > 0.0);
    }

    #[test]
    fn no_faults_means_no_rate() {
        assert_eq!(ChurnOutcome::default().ns_per_fault(), 0.0);
    }

    #[test]
    fn active_children_all_live_to_the_end() {
        let outcome = active(3, 2, Duration::from_millis(300)).expect("active");
        assert_eq!(outcome.processes, 3);
        assert!(outcome.elapsed_ns >= 300_000_000);
    }

    #[test]
    fn a_small_tree_exits_cleanly() {
        let outcome = spawn_tree(3, 4).expect("spawn");
        assert_eq!(outcome.processes, 3);
    }
}
