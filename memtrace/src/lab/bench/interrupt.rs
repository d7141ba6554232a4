//! Ctrl-C during a benchmark: the terminal sends SIGINT to the whole process group, so the
//! running workload and tracer stop by themselves; the benchmark itself must not die on the
//! spot, or the sandbox (memcg, zram swap) and a tracefs it mounted would stay behind. It
//! notes the signal and stops at the next step, unwinding through every `Drop`.
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Error;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Routes SIGINT to [`check`] instead of the default (immediate exit).
pub fn install() {
    let handler = note as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
}

/// An error once SIGINT has arrived, so that the caller unwinds and cleans up.
pub fn check() -> Result<(), Error> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err(Error::io(
            "memtrace bench",
            std::io::ErrorKind::Interrupted.into(),
        ));
    }
    Ok(())
}
