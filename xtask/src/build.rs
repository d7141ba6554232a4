//! `cargo xtask build`: builds the memtrace binary, eBPF programs included.

use std::path::PathBuf;

use anyhow::{Context as _, Result, ensure};

use crate::{
    setup::ensure_toolchain,
    util::{cargo, run, step},
};

/// Which cargo profile to build memtrace with.
#[derive(Clone, Copy, Debug)]
pub enum Profile {
    /// `--release`: what the tests, the demo and the benchmarks use.
    Release,
    /// The dev profile, for quicker edit-build cycles.
    Debug,
}

impl Profile {
    /// The directory under the target dir that this profile writes to.
    fn dir(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Debug => "debug",
        }
    }
}

/// Runs the `build` subcommand.
pub fn main(debug: bool) -> Result<()> {
    ensure_toolchain()?;
    let profile = if debug {
        Profile::Debug
    } else {
        Profile::Release
    };
    let binary = build_memtrace_with(profile)?;
    println!("{}", binary.display());
    Ok(())
}

/// Builds the release memtrace binary and returns its absolute path.
pub fn build_memtrace() -> Result<PathBuf> {
    build_memtrace_with(Profile::Release)
}

/// Builds memtrace with `profile` (its build.rs builds the eBPF programs through aya-build,
/// which finds bpf-linker on the PATH that `cargo()` sets) and returns the binary's path.
///
/// The kernel tests' crate is built with it: cargo resolves one set of features for the two,
/// the same set as `cargo test --package memtrace-tests`, so that the kernel tests reuse this
/// build of memtrace and its dependencies instead of building them again with other features
/// (minutes on two cores).
pub fn build_memtrace_with(profile: Profile) -> Result<PathBuf> {
    step(&format!("build memtrace ({})", profile.dir()));
    let mut build = cargo();
    build.args([
        "build",
        "--package",
        "memtrace",
        "--package",
        "memtrace-tests",
    ]);
    if let Profile::Release = profile {
        build.arg("--release");
    }
    run(&mut build).context("building memtrace failed")?;
    let binary = target_dir()?.join(profile.dir()).join("memtrace");
    ensure!(
        binary.is_file(),
        "cargo built memtrace but {} does not exist",
        binary.display()
    );
    Ok(binary)
}

/// The target directory as cargo resolves it (CARGO_TARGET_DIR, config files, default).
fn target_dir() -> Result<PathBuf> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("could not run `cargo metadata`")?;
    ensure!(
        output.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("`cargo metadata` printed invalid JSON")?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("`cargo metadata` has no target_directory")?;
    Ok(PathBuf::from(dir))
}
