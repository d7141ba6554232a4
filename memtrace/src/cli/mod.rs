//! Command-line parsing and dispatch: one file per subcommand.
#[macro_use]
pub mod stdio;
mod args;
mod bench;
mod completions;
mod demo;
mod diff;
mod hlog;
mod man;
mod output;
mod record;
mod report;
mod selfcheck;
mod serve;
mod workload;

use std::{ffi::OsString, process::ExitCode};

use clap::{Parser, Subcommand, error::ErrorKind};
use memtrace::{
    Error,
    collect::caps::{self, Need},
    lab::sandbox::sweep_stale,
};

/// Per-process latency of page faults, traced with eBPF.
#[derive(Debug, Parser)]
#[command(name = "memtrace", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trace page faults and report per-process latency distributions.
    Record(record::RecordArgs),
    /// Render the report of a recording made with `record -o`.
    Report(report::ReportArgs),
    /// Compare two recordings: per process, fault class and stall kind, beyond noise.
    Diff(diff::DiffArgs),
    /// Run a built-in workload in a temporary sandbox, trace it, and report.
    Demo(demo::DemoArgs),
    /// Measure memtrace's overhead, throughput, footprint and start-up (prints a table).
    Bench(bench::BenchArgs),
    /// Trace continuously and serve Prometheus metrics per memory cgroup on /metrics.
    Serve(serve::ServeArgs),
    /// Check memtrace against this kernel's own counters and delay accounting, in sandboxes.
    Selfcheck(selfcheck::SelfcheckArgs),
    /// A workload with known fault counts (used by the demo and the tests).
    #[command(hide = true)]
    Workload(workload::WorkloadArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(hide = true)]
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff): `memtrace man | man -l -`.
    #[command(hide = true)]
    Man(man::ManArgs),
}

/// Parses a command line (the program's name first) without running anything.
pub(crate) fn parse(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args)
}

/// Parses the command line and runs the subcommand.
pub fn run() -> Result<ExitCode, Error> {
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        // --help, --version, and a bare `memtrace`: clap's own text.
        Err(e)
            if !e.use_stderr()
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let _ = e.print();
            return Ok(ExitCode::from(if e.use_stderr() { 2 } else { 0 }));
        }
        Err(e) => {
            errln!("memtrace: {}", one_line(&e));
            return Ok(ExitCode::from(2));
        }
    };
    match cli.command {
        Command::Record(args) => record::run(args),
        Command::Report(args) => report::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Selfcheck(args) => selfcheck::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Workload(args) => workload::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

/// A usage error on one line, like every other error of memtrace: clap's first paragraph
/// without its `error: ` tag, and its tips (the usage and `--help` hint are left out).
pub(crate) fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let mut lines = text.lines().map(str::trim);
    let first: Vec<&str> = lines.by_ref().take_while(|line| !line.is_empty()).collect();
    let mut parts = vec![first.join(" ")];
    parts.extend(
        lines
            .filter(|line| line.starts_with("tip:"))
            .map(str::to_string),
    );
    let line = parts.join("; ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// Fails unless memtrace runs as root with the capabilities `need` asks for (named when
/// missing), then removes what a SIGKILLed earlier run left behind (sandbox memcgs and their
/// processes, temporary swap): every command that runs as root starts on a clean machine.
pub fn start_as_root(need: Need) -> Result<(), Error> {
    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotPrivileged);
    }
    caps::check(need)?;
    for line in sweep_stale() {
        errln!("memtrace: removed a leftover of an earlier run: {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn usage_error(args: &[&str]) -> String {
        let argv = std::iter::once("memtrace").chain(args.iter().copied());
        let error = parse(argv).expect_err("a usage error");
        assert!(error.use_stderr());
        one_line(&error)
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_fit_on_one_line() {
        assert_eq!(
            usage_error(&["record", "-d", "18446744073709551615"]),
            "invalid value '18446744073709551615' for '--duration <DURATION>': longer than the \
             maximum of 100 years"
        );
        assert_eq!(
            usage_error(&["record", "--min-stall", "0.1ns"]),
            "invalid value '0.1ns' for '--min-stall <LATENCY>': rounds to zero nanoseconds (the \
             shortest duration is 1ns)"
        );
        assert_eq!(
            usage_error(&["record", "--frobnicate"]),
            "unexpected argument '--frobnicate' found"
        );
        assert_eq!(
            usage_error(&["record", "--duraton", "1"]),
            "unexpected argument '--duraton' found; tip: a similar argument exists: '--duration'"
        );
        assert_eq!(
            usage_error(&["record", "--children"]),
            "the following required arguments were not provided: --pid <PID>"
        );
        for args in [&["record", "-i", "99999999999999999999"][..], &["frob"][..]] {
            let line = usage_error(args);
            assert!(!line.contains('\n') && !line.is_empty(), "{line:?}");
        }
    }

    #[test]
    fn latencies_parse_in_microseconds() {
        let cli = parse(["memtrace", "record", "--min-stall", "250us"]).expect("parses");
        let Command::Record(args) = cli.command else {
            panic!("not record: {cli:?}");
        };
        assert!(
            format!("{args:?}").contains("min_stall: Some(250µs)"),
            "{args:?}"
        );
    }
}
