//! The memtrace command line: a thin shell over the library.
mod cli;

use std::{io::Write, process::ExitCode};

/// Runs before Rust's runtime, which reopens a closed stdout on /dev/null: only here can a
/// closed stdout (`memtrace record >&-`) be told from a redirection to /dev/null.
#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_CLOSED_STDOUT: extern "C" fn() = cli::stdio::note_closed_stdout;

fn main() -> ExitCode {
    // glibc's default threshold moves up to the largest block freed: after start-up frees its
    // parses of the kernel's BTF (5 MB blocks), later tables as large stayed in the heap when
    // freed, and its trim threshold with it. A fixed threshold (glibc's initial one) keeps
    // large blocks mapped on their own and returned to the kernel when freed.
    // SAFETY: mallopt only sets an allocator threshold; no other thread runs yet.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10) };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            // Not eprintln!: it panics when stderr is a closed pipe.
            let _ = writeln!(std::io::stderr(), "memtrace: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
