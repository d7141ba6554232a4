//! Writing to the standard streams without panicking. `println!` and `eprintln!` panic when
//! the stream is a closed pipe (`memtrace record 2>&1 | head -2`), which would take a recording
//! down with a backtrace; here a lost message is only lost. The report is the exception: losing
//! it is an error, and a stdout that was closed from the start is reported as such.
use std::{
    io,
    sync::atomic::{AtomicBool, Ordering},
};

/// `eprintln!` that cannot panic: a closed or broken stderr loses the line, not the run.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that cannot panic, for lines beside the report (the report itself checks its
/// writes: see [`report_stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Set before `main` when stdout was closed at start (`memtrace record >&-`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Notes whether stdout is closed. Runs before Rust's runtime (see main.rs), which then reopens
/// a closed stdout on /dev/null: after that, the report would vanish without an error.
pub extern "C" fn note_closed_stdout() {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF on a closed fd.
    if unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1 {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Stdout for the report, or an error when it was closed at start.
pub fn report_stdout() -> io::Result<io::StdoutLock<'static>> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "it was closed when memtrace started",
        ));
    }
    Ok(io::stdout().lock())
}
