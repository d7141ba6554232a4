//! Components the kernel tests use as users would: a real browser opens the HTML report, and a
//! real Prometheus scrapes `memtrace serve`. Installed from Debian's packages when missing
//! (idempotent), like the toolchain.

use anyhow::{Context as _, Result, ensure};

use crate::util::{cmd, find_program, run};

/// Debian's headless-capable Chromium.
const CHROMIUM: &str = "chromium";

/// Debian's Prometheus server and its `promtool` (one package).
const PROMETHEUS: &str = "prometheus";

/// Makes sure `chromium` is on the PATH.
pub fn ensure_chromium() -> Result<()> {
    ensure_package(CHROMIUM, &[CHROMIUM], "the HTML report is tested in it")
}

/// Makes sure `prometheus` and `promtool` are on the PATH. The package's service is not
/// needed: the tests start their own server on loopback.
pub fn ensure_prometheus() -> Result<()> {
    ensure_package(
        PROMETHEUS,
        &[PROMETHEUS, "promtool"],
        "it scrapes `memtrace serve` in the tests",
    )
}

/// Installs Debian's `package` unless every one of `programs` is on the PATH.
fn ensure_package(package: &str, programs: &[&str], why: &str) -> Result<()> {
    if programs.iter().all(|p| find_program(p).is_some()) {
        println!("ok: {package} present");
        return Ok(());
    }
    println!("installing: {package} (apt-get; {why})");
    run(cmd("apt-get").arg("update")).context("apt-get update")?;
    run(cmd("apt-get")
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("installing {package}"))?;
    for program in programs {
        ensure!(
            find_program(program).is_some(),
            "apt-get installed {package}, but {program} is not on the PATH"
        );
    }
    Ok(())
}
