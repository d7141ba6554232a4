//! `cargo xtask setup`: installs what is missing of the eBPF build toolchain and of the tests'
//! Python hdrh, skips what is there.

use std::{env, iter, path::Path};

use anyhow::{Context as _, Result, bail, ensure};

use crate::util::{CHILD_PATH, cargo, cmd, find_program, probe, run, step};

/// The LLVM that the nightly's rustc uses; bpf-linker must link the same major version.
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
/// Debian/Ubuntu packages (apt.llvm.org) that provide [`LLVM_PREFIX`] for building bpf-linker.
const LLVM_PACKAGES: [&str; 2] = ["llvm-22-dev", "libpolly-22-dev"];
/// The bpf-linker feature matching [`LLVM_PREFIX`].
const BPF_LINKER_LLVM_FEATURE: &str = "llvm-22";

/// Runs the `setup` subcommand.
pub fn main() -> Result<()> {
    ensure_toolchain()?;
    ensure_python_hdrh()?;
    println!("toolchain ready");
    Ok(())
}

/// Makes sure nightly + rust-src, LLVM 22 and bpf-linker are installed; fast when they are.
pub fn ensure_toolchain() -> Result<()> {
    step("toolchain");
    ensure!(
        find_program("rustup").is_some(),
        "rustup not found on PATH or in ~/.cargo/bin: install it from https://rustup.rs"
    );
    ensure_nightly()?;
    ensure_rust_src()?;
    ensure_llvm()?;
    ensure_bpf_linker()
}

/// The eBPF crate builds with `rustup run nightly` (aya-build), so a nightly must exist.
fn ensure_nightly() -> Result<()> {
    let list = probe(cmd("rustup").args(["toolchain", "list"]))
        .context("`rustup toolchain list` failed")?;
    if list.lines().any(is_plain_nightly) {
        let version = probe(cmd("rustup").args(["run", "nightly", "rustc", "--version"]))
            .unwrap_or_else(|| "version unknown".to_owned());
        println!("ok: nightly toolchain present ({version})");
        return Ok(());
    }
    println!("installing: nightly toolchain");
    run(cmd("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
        .context("could not install the nightly toolchain")
}

/// Whether a line of `rustup toolchain list` names the toolchain `+nightly` selects;
/// a dated nightly (`nightly-2026-05-01-...`) is not it.
fn is_plain_nightly(line: &str) -> bool {
    let name = line.split_whitespace().next().unwrap_or_default();
    name == "nightly"
        || name
            .strip_prefix("nightly-")
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// The bpf targets have no prebuilt std: the eBPF build compiles `core` from rust-src.
fn ensure_rust_src() -> Result<()> {
    let installed = probe(cmd("rustup").args(["+nightly", "component", "list", "--installed"]))
        .context("`rustup +nightly component list --installed` failed")?;
    if installed.lines().any(is_rust_src) {
        println!("ok: rust-src for nightly present");
        return Ok(());
    }
    println!("installing: rust-src for nightly");
    run(cmd("rustup").args(["+nightly", "component", "add", "rust-src"]))
        .context("could not add rust-src to the nightly toolchain")
}

/// Whether a line of `rustup component list --installed` is rust-src (target-less, but allow one).
fn is_rust_src(line: &str) -> bool {
    let name = line.split_whitespace().next().unwrap_or_default();
    name == "rust-src" || name.starts_with("rust-src-")
}

/// bpf-linker is built against LLVM 22's development files.
fn ensure_llvm() -> Result<()> {
    let llvm_config = Path::new(LLVM_PREFIX).join("bin/llvm-config");
    if llvm_config.is_file() {
        let version = probe(cmd(&llvm_config).arg("--version"))
            .unwrap_or_else(|| "version unknown".to_owned());
        println!("ok: LLVM {version} present ({})", llvm_config.display());
        return Ok(());
    }
    let need = format!(
        "LLVM 22 is missing ({} not found): install the packages {} (from apt.llvm.org)",
        llvm_config.display(),
        LLVM_PACKAGES.join(" "),
    );
    if find_program("apt-get").is_none() {
        bail!("{need}; apt-get is not available here to do it");
    }
    println!("installing: {} (apt-get)", LLVM_PACKAGES.join(" "));
    run(cmd("apt-get").arg("update")).with_context(|| need.clone())?;
    run(cmd("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y"])
        .args(LLVM_PACKAGES))
    .with_context(|| need.clone())?;
    ensure!(
        llvm_config.is_file(),
        "{need}; apt-get succeeded but did not provide it"
    );
    Ok(())
}

/// Python's `hdrh` (PyPI: hdrhistogram): a test of `memtrace report --hlog` reads the log with
/// it, a reader independent of the Rust crate that writes it. Installed by pip when missing.
pub fn ensure_python_hdrh() -> Result<()> {
    let import_hdrh = || probe(cmd("python3").args(["-c", "import hdrh"])).is_some();
    ensure!(
        find_program("python3").is_some(),
        "python3 not found: the tests of `memtrace report --hlog` need it, with pip"
    );
    if import_hdrh() {
        println!("ok: Python's hdrh present");
        return Ok(());
    }
    println!("installing: Python package hdrhistogram (pip)");
    run(cmd("python3").args(["-m", "pip", "install", "hdrhistogram"]))
        .context("could not install the Python package hdrhistogram (the hlog tests need it)")?;
    ensure!(
        import_hdrh(),
        "pip installed hdrhistogram, but `python3 -c \"import hdrh\"` still fails"
    );
    Ok(())
}

/// aya-build links the eBPF programs with bpf-linker, which must be on the PATH.
fn ensure_bpf_linker() -> Result<()> {
    if let Some(version) = probe(cmd("bpf-linker").arg("--version")) {
        println!("ok: {version} present");
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "bpf-linker", "--no-default-features", "--locked"]);
    install.args(["--features", BPF_LINKER_LLVM_FEATURE]);
    // An existing binary that doesn't run (e.g. its LLVM was removed) must be rebuilt, and
    // without --force cargo would call it up to date.
    if let Some(broken) = find_program("bpf-linker") {
        println!(
            "bpf-linker at {} does not run: reinstalling",
            broken.display()
        );
        install.arg("--force");
    }
    println!("installing: bpf-linker built against LLVM 22 (about a minute)");
    let llvm_bin = Path::new(LLVM_PREFIX).join("bin");
    let path = env::join_paths(iter::once(llvm_bin).chain(env::split_paths(&*CHILD_PATH)))
        .context("could not build PATH for the bpf-linker build")?;
    run(install.env("PATH", path).env("LLVM_PREFIX", LLVM_PREFIX))
        .context("could not install bpf-linker")?;
    let version = probe(cmd("bpf-linker").arg("--version")).context(
        "bpf-linker was installed but does not run from PATH; is $CARGO_HOME/bin the install dir?",
    )?;
    println!("ok: {version} installed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_plain_nightly, is_rust_src};

    #[test]
    fn only_the_undated_nightly_is_the_nightly() {
        assert!(is_plain_nightly("nightly-x86_64-unknown-linux-gnu"));
        assert!(is_plain_nightly(
            "nightly-x86_64-unknown-linux-gnu (active)"
        ));
        assert!(is_plain_nightly("nightly"));
        assert!(!is_plain_nightly(
            "nightly-2026-05-01-x86_64-unknown-linux-gnu"
        ));
        assert!(!is_plain_nightly(
            "stable-x86_64-unknown-linux-gnu (active, default)"
        ));
        assert!(!is_plain_nightly(""));
    }

    #[test]
    fn rust_src_is_found_with_or_without_target() {
        assert!(is_rust_src("rust-src"));
        assert!(is_rust_src("rust-src-x86_64-unknown-linux-gnu"));
        assert!(!is_rust_src("rust-std-x86_64-unknown-linux-gnu"));
    }
}
