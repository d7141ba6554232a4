//! The memtrace command line: a thin shell over the library.
mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("memtrace: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
