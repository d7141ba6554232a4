//! Command-line parsing and dispatch: one file per subcommand.
mod args;
mod bench;
mod demo;
mod output;
mod record;
mod report;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use memtrace::Error;

/// Per-process latency of page faults, traced with eBPF.
#[derive(Debug, Parser)]
#[command(name = "memtrace", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trace page faults and report per-process latency distributions.
    Record(record::RecordArgs),
    /// Render the report of a recording made with `record -o`.
    Report(report::ReportArgs),
    /// Run a built-in workload in a temporary sandbox, trace it, and report.
    Demo(demo::DemoArgs),
    /// Measure memtrace's overhead, throughput, footprint and start-up (prints a table).
    Bench(bench::BenchArgs),
    /// A workload with known fault counts (used by the demo and the tests).
    #[command(hide = true)]
    Workload(workload::WorkloadArgs),
}

/// Parses the command line and runs the subcommand.
pub fn run() -> Result<ExitCode, Error> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(if e.use_stderr() { 2 } else { 0 }));
        }
    };
    match cli.command {
        Command::Record(args) => record::run(args),
        Command::Report(args) => report::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Workload(args) => workload::run(args),
    }
}

/// Fails unless memtrace runs with the privileges it needs to load eBPF.
pub fn require_root() -> Result<(), Error> {
    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotPrivileged);
    }
    Ok(())
}
