//! `cargo xtask fuzz`: runs memtrace's fuzz targets (memtrace/fuzz: the decoders and the
//! command line) with libFuzzer for a while each, installing cargo-fuzz first if it is missing.
//! A crash fails the run and leaves the input under memtrace/fuzz/artifacts.

use anyhow::{Context as _, Result};

use crate::util::{AYA_BUILD_SKIP, cmd, find_program, run, step, workspace_root};

/// The fuzz targets (memtrace/fuzz/fuzz_targets).
const TARGETS: [&str; 3] = ["recording", "records", "args"];

/// Options of the `fuzz` subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub(crate) seconds: u32,
}

/// Runs every target for `seconds`.
pub fn main(args: &Args) -> Result<()> {
    ensure_cargo_fuzz()?;
    for target in TARGETS {
        step(&format!("fuzz {target} for {} s", args.seconds));
        run(cmd("cargo")
            // 16 codegen units instead of cargo-fuzz's 1: the build (memtrace and all its
            // dependencies, under the address sanitizer) takes 6 minutes on two cores
            // instead of 8½, for somewhat slower runs.
            .args([
                "+nightly",
                "fuzz",
                "run",
                "--codegen-units",
                "16",
                target,
                "--",
            ])
            .arg(format!("-max_total_time={}", args.seconds))
            // No target needs the kernel programs: skip building them under the sanitizer.
            .env(AYA_BUILD_SKIP, "1")
            .current_dir(workspace_root().join("memtrace")))?;
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    if find_program("cargo-fuzz").is_some() {
        return Ok(());
    }
    step("installing cargo-fuzz");
    run(cmd("cargo").args(["install", "cargo-fuzz", "--locked"])).context("installing cargo-fuzz")
}
