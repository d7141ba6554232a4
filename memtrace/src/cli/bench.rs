//! `memtrace bench`: placeholder until the benchmark module lands.
use std::process::ExitCode;

use clap::Args;
use memtrace::Error;

/// Options of `memtrace bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short run.
    #[arg(long)]
    quick: bool,
}

/// Runs the benchmarks.
pub fn run(args: BenchArgs) -> Result<ExitCode, Error> {
    let _ = args.quick;
    Err(Error::InvalidArgument {
        what: "command",
        value: "bench".into(),
        reason: "not implemented yet".into(),
    })
}
