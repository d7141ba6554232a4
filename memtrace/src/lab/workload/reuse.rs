//! A workload that makes the kernel reuse a pid: a first child faults `first_pages` pages and
//! exits; then short-lived children are forked until one gets the same pid, and that one faults
//! `second_pages` pages. Each faulting child reports its own fault counters through a pipe, so a
//! tracer's per-process figures can be checked against two processes that shared a pid.
use std::{io, time::Instant};

use super::{FaultCounters, PAGE, mapping::Mapping};

/// What happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReuseOutcome {
    /// The workload's own pid, and the pid the two faulting children shared.
    pub parent: u32,
    pub pid: u32,
    /// Faults of the first and of the second process with that pid (their whole lives).
    pub first: FaultCounters,
    pub second: FaultCounters,
    /// Children forked until the pid came back (the second one included).
    pub forks: u64,
    pub elapsed_ns: u64,
}

/// Forks at most this many children looking for the pid: pid_max is 32 768 by default.
const MAX_FORKS: u64 = 5_000_000;

/// Runs the workload.
pub fn run(first_pages: usize, second_pages: usize) -> io::Result<ReuseOutcome> {
    let start = Instant::now();
    let (pid, first) = fork_faulting(first_pages, None)?;
    let mut forks = 0;
    loop {
        forks += 1;
        if forks > MAX_FORKS {
            return Err(io::Error::other(format!(
                "pid {pid} did not come back in {MAX_FORKS} forks"
            )));
        }
        let (child, counters) = fork_faulting(second_pages, Some(pid))?;
        if child == pid {
            return Ok(ReuseOutcome {
                parent: std::process::id(),
                pid,
                first,
                second: counters,
                forks,
                elapsed_ns: u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
            });
        }
    }
}

/// Forks a child that, when its pid is `only_as` (or always, without it), touches `pages`
/// fresh pages and writes its own fault counters to a pipe; then it exits. Returns the child's
/// pid and its counters (zero when it did not fault).
fn fork_faulting(pages: usize, only_as: Option<u32>) -> io::Result<(u32, FaultCounters)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: the child only maps, touches, reads its own /proc stat into a stack buffer,
    // writes to a pipe and leaves with _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        let err = io::Error::last_os_error();
        close(read_fd);
        close(write_fd);
        return Err(err);
    }
    if child == 0 {
        close(read_fd);
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() } as u32;
        let code = if only_as.is_none_or(|pid| pid == me) {
            child_fault_and_report(pages, write_fd)
        } else {
            0
        };
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(code) };
    }
    close(write_fd);
    let mut raw = [0u8; 16];
    let mut got = 0;
    while got < raw.len() {
        // SAFETY: reads into the unfilled rest of `raw`.
        let n = unsafe { libc::read(read_fd, raw[got..].as_mut_ptr().cast(), raw.len() - got) };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    close(read_fd);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(io::Error::other(format!("child {child} failed: {status}")));
    }
    let word = |i: usize| u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let counters = if got == raw.len() {
        FaultCounters {
            minflt: word(0),
            majflt: word(1),
        }
    } else {
        FaultCounters::default()
    };
    Ok((child as u32, counters))
}

/// In the child: touch `pages` pages, then send minflt and majflt (from getrusage, which needs
/// no allocation) just before exiting: the faults of the exit itself are not counted.
fn child_fault_and_report(pages: usize, fd: i32) -> i32 {
    let Ok(map) = Mapping::anonymous(pages * PAGE) else {
        return 1;
    };
    std::hint::black_box(map.touch_pages(true));
    drop(map);
    // SAFETY: `usage` is a valid out-struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&(usage.ru_minflt as u64).to_ne_bytes());
    raw[8..].copy_from_slice(&(usage.ru_majflt as u64).to_ne_bytes());
    // SAFETY: writes a stack buffer to our pipe.
    let written = unsafe { libc::write(fd, raw.as_ptr().cast(), raw.len()) };
    i32::from(written != raw.len() as isize)
}

fn close(fd: i32) {
    // SAFETY: closes an fd this function opened.
    unsafe { libc::close(fd) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_faulting_child_reports_its_faults() {
        let (pid, counters) = fork_faulting(64, None).expect("fork");
        assert!(pid > 0);
        assert!(counters.minflt >= 64, "{counters:?}");
        let (_, quiet) = fork_faulting(64, Some(1)).expect("fork");
        assert_eq!(quiet, FaultCounters::default(), "pid 1 is never ours");
    }
}
