//! `cargo xtask run`: builds memtrace and runs it with the given arguments.

use anyhow::Result;

use crate::{
    build::build_memtrace,
    setup::ensure_toolchain,
    util::{cmd, exec},
};

/// Options of the `run` subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments for memtrace.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) memtrace_args: Vec<String>,
}

/// Runs the `run` subcommand.
pub fn main(args: Args) -> Result<()> {
    ensure_toolchain()?;
    let binary = build_memtrace()?;
    exec(cmd(&binary).args(&args.memtrace_args))
}
