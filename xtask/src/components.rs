//! Components the kernel tests use as users would: a real browser opens the HTML report.
//! Installed from Debian's packages when missing (idempotent), like the toolchain.

use anyhow::{Context as _, Result, ensure};

use crate::util::{cmd, find_program, run};

/// Debian's headless-capable Chromium.
const CHROMIUM: &str = "chromium";

/// Makes sure `chromium` is on the PATH.
pub fn ensure_chromium() -> Result<()> {
    if find_program(CHROMIUM).is_some() {
        println!("ok: {CHROMIUM} present");
        return Ok(());
    }
    println!("installing: {CHROMIUM} (apt-get; the HTML report is tested in it)");
    run(cmd("apt-get").arg("update")).context("apt-get update")?;
    run(cmd("apt-get")
        .args(["install", "-y", "--no-install-recommends", CHROMIUM])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("installing chromium")?;
    ensure!(
        find_program(CHROMIUM).is_some(),
        "apt-get installed {CHROMIUM}, but it is not on the PATH"
    );
    Ok(())
}
