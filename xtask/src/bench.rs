//! `cargo xtask bench`: builds memtrace and runs its overhead benchmarks.

use anyhow::Result;

use crate::{
    build::build_memtrace,
    setup::ensure_toolchain,
    util::{cmd, exec},
};

/// Options of the `bench` subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A short run, for a quick look rather than numbers to publish.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Passed to `memtrace bench`.
    #[arg(last = true)]
    pub(crate) bench_args: Vec<String>,
}

/// Runs the `bench` subcommand.
pub fn main(args: Args) -> Result<()> {
    ensure_toolchain()?;
    let binary = build_memtrace()?;
    let mut bench = cmd(&binary);
    bench.arg("bench");
    if args.quick {
        bench.arg("--quick");
    }
    exec(bench.args(&args.bench_args))
}
