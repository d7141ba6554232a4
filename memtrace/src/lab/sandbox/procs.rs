//! Processes: whether an owner is alive, and emptying and removing a cgroup directory.
use super::sys;
use crate::error::Error;
use std::io;
use std::path::Path;

/// Whether a process with this pid exists (EPERM means it exists but is not ours to signal).
pub(super) fn pid_alive(pid: u32) -> bool {
    let Some(pid) = positive(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission; it delivers nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid as kill(2) wants it; 0 and negative values would address process groups.
fn positive(pid: u32) -> Option<libc::pid_t> {
    libc::pid_t::try_from(pid).ok().filter(|&p| p > 0)
}

/// Sends SIGKILL; a process that is already gone is not an error.
fn sigkill(pid: u32) {
    let Some(pid) = positive(pid) else {
        return;
    };
    // SAFETY: plain kill(2) on one positive pid.
    if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
        log::debug!("SIGKILL {pid}: {}", io::Error::last_os_error());
    }
}

/// The processes (thread-group ids) in the cgroup directory `dir`.
pub(super) fn pids(dir: &Path) -> Result<Vec<u32>, Error> {
    let text = sys::read(&dir.join("cgroup.procs"))?;
    Ok(text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Kills everything in the cgroup `dir` until it is empty: through `cgroup.kill` when asked and
/// present (v2, 5.14+), which also catches children forked meanwhile; else SIGKILL to each pid.
pub(super) fn kill_all(dir: &Path, use_kill_file: bool) -> Result<(), Error> {
    let own = std::process::id();
    let kill_file = dir.join("cgroup.kill");
    let use_kill_file = use_kill_file && kill_file.exists();
    let emptied = sys::poll(sys::REMOVE_TIMEOUT, || {
        let pids = match pids(dir) {
            Ok(pids) => pids,
            // Someone removed the directory meanwhile: nothing left to kill.
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(Some(()));
            }
            Err(e) => return Err(e),
        };
        if pids.is_empty() {
            return Ok(Some(()));
        }
        if pids.contains(&own) {
            return Err(error(
                dir,
                "memtrace itself is inside; not killing it".into(),
            ));
        }
        if use_kill_file {
            sys::write(&kill_file, "1")?;
        } else {
            pids.into_iter().for_each(sigkill);
        }
        Ok(None)
    })?;
    emptied.ok_or_else(|| {
        let left = format!("processes still inside after {:?}", sys::REMOVE_TIMEOUT);
        error(dir, left)
    })
}

/// Removes an empty cgroup directory; a directory already gone is fine.
pub(super) fn rmdir(dir: &Path) -> Result<(), Error> {
    let done = sys::poll(sys::REMOVE_TIMEOUT, || match std::fs::remove_dir(dir) {
        Ok(()) => Ok(Some(())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some(())),
        // Exiting tasks can keep a cgroup busy for a moment after cgroup.procs is empty.
        Err(e) if sys::is_busy(&e) => Ok(None),
        Err(e) => Err(Error::io(format!("removing cgroup {}", dir.display()), e)),
    })?;
    done.ok_or_else(|| error(dir, format!("still busy after {:?}", sys::REMOVE_TIMEOUT)))
}

fn error(dir: &Path, reason: String) -> Error {
    Error::Sandbox {
        what: format!("memory cgroup {}", dir.display()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_is_alive_and_absurd_pids_are_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
        assert_eq!(positive(0), None);
        assert_eq!(positive(u32::MAX), None);
    }
}
