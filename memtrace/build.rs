//! Builds the kernel programs (memtrace-ebpf) for the bpf target and leaves the object in OUT_DIR,
//! where `include_bytes_aligned!` embeds it into the binary.
use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    if which("bpf-linker").is_none() && std::env::var_os("AYA_BUILD_SKIP").is_none() {
        return Err(anyhow!(
            "bpf-linker is not on PATH: run `cargo xtask setup` (it installs LLVM 22, \
             nightly's rust-src and bpf-linker), or use `cargo xtask build`"
        ));
    }
    let out_dir = std::env::var_os("OUT_DIR").context("OUT_DIR not set")?;
    let object = std::path::Path::new(&out_dir).join("memtrace");
    // The manifest directory of this run, not of the build script's compilation: a script
    // compiled in another checkout sharing the target directory must watch this one's sources.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let root_dir = format!("{manifest_dir}/../memtrace-ebpf");
    let packages = [Package {
        name: "memtrace-ebpf",
        root_dir: &root_dir,
        ..Default::default()
    }];
    aya_build::build_ebpf(packages, Toolchain::default())?;
    // With AYA_BUILD_SKIP (docs, clippy-only builds) there is no object: embed an empty one, which
    // memtrace refuses to load with a clear message.
    if !object.exists() {
        std::fs::write(&object, []).context("writing the placeholder eBPF object")?;
    }
    Ok(())
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
