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
    /// Build without the address sanitizer: a quicker build and more runs a second, for a
    /// short fuzz (the test suite's). The decoders' only unsafe code reads records whose
    /// length is checked first; libFuzzer still finds panics, overflows and failed asserts.
    #[arg(long)]
    pub(crate) no_sanitizer: bool,
}

/// Runs every target for `seconds`.
pub fn main(args: &Args) -> Result<()> {
    ensure_cargo_fuzz()?;
    for target in TARGETS {
        step(&format!("fuzz {target} for {} s", args.seconds));
        let mut fuzz = cmd("cargo");
        // 16 codegen units instead of cargo-fuzz's 1: building memtrace and all its
        // dependencies instrumented takes minutes less on two cores, for somewhat slower runs.
        fuzz.args(["+nightly", "fuzz", "run", "--codegen-units", "16"]);
        if args.no_sanitizer {
            fuzz.args(["--sanitizer", "none"]);
        }
        run(fuzz
            .args([target, "--"])
            .arg(format!("-max_total_time={}", args.seconds))
            // No target needs the kernel programs: skip building them.
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
