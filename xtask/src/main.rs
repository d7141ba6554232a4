//! memtrace's task runner: `cargo xtask <command>` (see `cargo xtask --help`).

mod bench;
mod build;
mod components;
mod demo;
mod fuzz;
mod run;
mod setup;
mod tally;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::util::ChildFailed;

/// Build, test and run memtrace.
#[derive(Debug, Parser)]
#[command(bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what is missing of the eBPF toolchain (nightly, rust-src, LLVM 22, bpf-linker).
    Setup,
    /// Build memtrace (release unless --debug) and print the binary's path.
    Build {
        /// Build with the dev profile.
        #[arg(long)]
        debug: bool,
    },
    /// fmt, clippy, unit tests, then the kernel integration tests (root): what CI runs.
    Test(test::Args),
    /// Build memtrace and run `memtrace demo` (root).
    Demo(demo::Args),
    /// Build memtrace and run `memtrace bench`.
    Bench(bench::Args),
    /// Build memtrace and run it with the given arguments.
    Run(run::Args),
    /// Fuzz the recording and record decoders (libFuzzer, nightly).
    Fuzz(fuzz::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::main(),
        Command::Build { debug } => build::main(debug),
        Command::Test(args) => test::main(args),
        Command::Demo(args) => demo::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Run(args) => run::main(args),
        Command::Fuzz(args) => fuzz::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            // Hand on a failed child's own exit code, so CI reports what really happened.
            let code = err
                .downcast_ref::<ChildFailed>()
                .map_or(1, ChildFailed::exit_code);
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Command};

    fn parse(args: &[&str]) -> Command {
        let argv = ["cargo xtask"].iter().chain(args);
        Cli::try_parse_from(argv)
            .unwrap_or_else(|err| panic!("{args:?} should parse: {err}"))
            .command
    }

    #[test]
    fn test_args_after_double_dash_reach_the_test_binary() {
        let Command::Test(args) = parse(&["test", "--kernel", "--", "oom", "--nocapture"]) else {
            panic!("not a test command");
        };
        assert!(args.kernel && !args.unit);
        assert_eq!(args.test_args, ["oom", "--nocapture"]);
    }

    #[test]
    fn unit_excludes_kernel_and_test_args() {
        assert!(Cli::try_parse_from(["cargo xtask", "test", "--unit", "--kernel"]).is_err());
        assert!(Cli::try_parse_from(["cargo xtask", "test", "--unit", "--", "x"]).is_err());
    }

    #[test]
    fn demo_and_run_take_hyphenated_args_without_double_dash() {
        let Command::Demo(demo) = parse(&["demo", "--duration", "5"]) else {
            panic!("not a demo command");
        };
        assert_eq!(demo.demo_args, ["--duration", "5"]);
        let Command::Run(run) = parse(&["run", "--", "trace", "-p", "1"]) else {
            panic!("not a run command");
        };
        assert_eq!(run.memtrace_args, ["trace", "-p", "1"]);
    }

    #[test]
    fn bench_passes_quick() {
        let Command::Bench(bench) = parse(&["bench", "--quick"]) else {
            panic!("not a bench command");
        };
        assert!(bench.quick && bench.bench_args.is_empty());
    }
}
