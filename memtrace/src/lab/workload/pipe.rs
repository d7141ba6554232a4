//! Context switches as fast as they come: two processes on one CPU pass a byte back and forth
//! through two pipes, so every round trip is two switches (what `perf bench sched pipe` does
//! pinned with taskset). A hook on `sched_switch` runs twice per round trip.
use std::{
    io::{Read, Write},
    os::fd::{FromRawFd, OwnedFd},
    time::Instant,
};

/// What a run measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PipeOutcome {
    pub round_trips: u64,
    pub ns_per_round_trip: f64,
}

fn pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fds from pipe2, owned by nothing else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((r.into(), w.into()))
}

/// Pins the calling process to `cpu`.
fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays inside it for cpu < CPU_SETSIZE.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `round_trips` round trips between this process and a forked child, both on `cpu`.
pub fn run(round_trips: u64, cpu: usize) -> std::io::Result<PipeOutcome> {
    pin(cpu)?;
    let (to_child_r, mut to_child_w) = pipe()?;
    let (mut to_parent_r, to_parent_w) = pipe()?;
    // SAFETY: the child only does pipe I/O and _exit: nothing that needs the parent's locks.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // The parent's ends closed here too, so that the parent closing its end ends the loop.
        drop((to_child_w, to_parent_r));
        let (mut input, mut output) = (to_child_r, to_parent_w);
        let mut byte = [0u8; 1];
        while input.read_exact(&mut byte).is_ok() {
            if output.write_all(&byte).is_err() {
                break;
            }
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    drop((to_child_r, to_parent_w));
    let mut byte = [0u8; 1];
    let mut exchange = || -> std::io::Result<()> {
        to_child_w.write_all(&byte)?;
        to_parent_r.read_exact(&mut byte)
    };
    // Warm up: both processes running and their pages in.
    for _ in 0..1_000 {
        exchange()?;
    }
    let start = Instant::now();
    for _ in 0..round_trips {
        exchange()?;
    }
    let elapsed = start.elapsed();
    drop(to_child_w);
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Ok(PipeOutcome {
        round_trips,
        ns_per_round_trip: elapsed.as_nanos() as f64 / round_trips.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_are_counted_and_timed() {
        let outcome = run(2_000, 0).expect("pipe ping-pong");
        assert_eq!(outcome.round_trips, 2_000);
        assert!(outcome.ns_per_round_trip > 0.0);
    }
}
