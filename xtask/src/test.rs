//! `cargo xtask test`: the whole check of the README and CI, from formatting to the kernel tests.

use std::{env, path::Path};

use anyhow::{Result, bail};

use crate::{
    build::build_memtrace,
    setup::{ensure_python_hdrh, ensure_toolchain},
    tally::{Tally, run_counted},
    util::{AYA_BUILD_SKIP, cargo, is_root, run, step},
};

/// Setting this to `1` skips the kernel tests instead of failing where they can't run.
const SKIP_VAR: &str = "MEMTRACE_SKIP_KERNEL_TESTS";
/// The kernel's own BTF: memtrace's tp_btf programs and offset lookups need it.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Options of the `test` subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only formatting, clippy and the unit tests (no root needed).
    #[arg(long, conflicts_with = "kernel")]
    pub(crate) unit: bool,
    /// Only the kernel integration tests (needs root).
    #[arg(long)]
    pub(crate) kernel: bool,
    /// Passed to the integration test binary, e.g. a test name filter.
    #[arg(last = true, conflicts_with = "unit")]
    pub(crate) test_args: Vec<String>,
}

/// Runs the `test` subcommand and closes with one line counting every test that ran.
pub fn main(args: Args) -> Result<()> {
    let mut tally = Tally::default();
    let result = checks(&args, &mut tally);
    println!("\n{}", tally.summary());
    result
}

fn checks(args: &Args, tally: &mut Tally) -> Result<()> {
    ensure_toolchain()?;
    let skip_kernel = env::var_os(SKIP_VAR).is_some_and(|value| value == "1");
    let blockers = kernel_blockers();
    if !args.kernel {
        // Say it now rather than after minutes of unit tests.
        if !args.unit && !skip_kernel && !blockers.is_empty() {
            println!(
                "warning: the kernel tests will fail after the unit tests: {}",
                blockers.join("; ")
            );
        }
        unit_checks(tally, !args.unit)?;
    }
    if args.unit {
        return Ok(());
    }
    if skip_kernel {
        let banner = "!".repeat(72);
        println!("\n{banner}\nSKIPPED kernel tests because {SKIP_VAR}=1\n{banner}");
        return Ok(());
    }
    if !blockers.is_empty() {
        bail!(
            "the kernel tests cannot run: {}. They prove the eBPF path end to end; \
             run as root on a kernel with BTF, or set {SKIP_VAR}=1 to skip them knowingly",
            blockers.join("; ")
        );
    }
    kernel_tests(&args.test_args, tally)
}

/// Seconds each fuzz target runs in the suite (`cargo xtask fuzz` runs longer).
const FUZZ_SECONDS: u32 = 15;

/// Formatting, lints, the tests that need no kernel, and a short fuzz of the decoders.
///
/// The eBPF programs are built once: by the release build when `release_build` (the kernel
/// tests use it later), else by clippy's run of memtrace's build.rs. Clippy and the unit tests
/// then skip them (`AYA_BUILD_SKIP`): no unit test loads them, and each cargo profile would
/// otherwise build them again from scratch (a minute each on two cores).
fn unit_checks(tally: &mut Tally, release_build: bool) -> Result<()> {
    step("fmt");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    if release_build {
        build_memtrace()?;
    }
    step("clippy");
    // The eBPF crate only builds for the bpf target; memtrace's build.rs builds (and so checks)
    // it: in the release build above, or in this run with --unit.
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--exclude",
        "memtrace-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    if release_build {
        clippy.env(AYA_BUILD_SKIP, "1");
    }
    run(&mut clippy)?;
    // A unit test of `report --hlog` reads the log back with Python's hdrh.
    ensure_python_hdrh()?;
    step("unit tests");
    run_counted(
        cargo()
            .args([
                "test",
                "--package",
                "memtrace",
                "--package",
                "memtrace-common",
                "--package",
                "xtask",
            ])
            .env(AYA_BUILD_SKIP, "1"),
        tally,
    )?;
    // Without the address sanitizer: its build of memtrace and every dependency took two more
    // of the suite's minutes on two cores (7 min 23 s against 5 min 06 s), for 15-second runs.
    crate::fuzz::main(&crate::fuzz::Args {
        seconds: FUZZ_SECONDS,
        no_sanitizer: true,
    })
}

/// Why the kernel tests can't run on this machine; empty when they can.
fn kernel_blockers() -> Vec<String> {
    let mut blockers = Vec::new();
    if !is_root() {
        blockers.push("not running as root (loading eBPF programs needs it)".to_owned());
    }
    if !Path::new(VMLINUX_BTF).exists() {
        blockers.push(format!(
            "{VMLINUX_BTF} is missing (a kernel built without CONFIG_DEBUG_INFO_BTF)"
        ));
    }
    blockers
}

/// The root-only integration tests against the release binary, one at a time since they
/// share the kernel (memcgs, swap, global counters).
fn kernel_tests(test_args: &[String], tally: &mut Tally) -> Result<()> {
    crate::components::ensure_chromium()?;
    crate::components::ensure_prometheus()?;
    let binary = build_memtrace()?;
    step("kernel integration tests");
    run_counted(
        cargo()
            .args(["test", "--release", "--package", "memtrace-tests"])
            .args(["--", "--test-threads=1"])
            .args(test_args)
            .env("MEMTRACE_BIN", &binary),
        tally,
    )
}
