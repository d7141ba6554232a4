//! `cargo xtask demo`: builds memtrace and runs its self-contained demonstration.

use anyhow::{Result, ensure};

use crate::{
    build::build_memtrace,
    setup::ensure_toolchain,
    util::{cmd, exec, is_root},
};

/// Options of the `demo` subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Passed to `memtrace demo`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) demo_args: Vec<String>,
}

/// Runs the `demo` subcommand.
pub fn main(args: Args) -> Result<()> {
    // Checked before building so a non-root user doesn't wait for a build that can't be used.
    ensure!(
        is_root(),
        "the demo loads eBPF programs and creates memory cgroups: run it as root"
    );
    ensure_toolchain()?;
    let binary = build_memtrace()?;
    exec(cmd(&binary).arg("demo").args(&args.demo_args))
}
