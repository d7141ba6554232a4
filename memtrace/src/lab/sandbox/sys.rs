//! Small system helpers: sysfs/cgroupfs reads and writes with context, bounded waits.
use crate::error::Error;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long removal waits for the kernel (processes to exit, a busy device to close).
pub(super) const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a whole (pseudo-)file.
pub(super) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// Writes `value` to a (pseudo-)file in one write, as `echo value > path` would.
pub(super) fn write(path: &Path, value: &str) -> Result<(), Error> {
    write_raw(path, value)
        .map_err(|e| Error::io(format!("writing {value:?} to {}", path.display()), e))
}

/// Like [`write`] but keeps the bare `io::Error`, for callers that branch on its kind.
pub(super) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    // Not `fs::write`: it opens with O_CREAT|O_TRUNC, and cgroupfs/sysfs want a plain write.
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// Calls `attempt` until it returns `Ok(Some(_))` or an error, or `timeout` has passed (then
/// `Ok(None)`). The kernel gives no portable notification for "cgroup empty" or "device no longer
/// busy" on both cgroup versions, so removal polls with short sleeps, bounded.
pub(super) fn poll<T>(
    timeout: Duration,
    mut attempt: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = attempt()? {
            return Ok(Some(done));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether an `io::Error` is EBUSY (a cgroup with tasks, a device still open).
pub(super) fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}
