//! The memtrace command line: a thin shell over the library.
mod cli;

use std::{io::Write, process::ExitCode};

/// Runs before Rust's runtime, which reopens a closed stdout on /dev/null: only here can a
/// closed stdout (`memtrace record >&-`) be told from a redirection to /dev/null.
#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_CLOSED_STDOUT: extern "C" fn() = cli::stdio::note_closed_stdout;

fn main() -> ExitCode {
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
