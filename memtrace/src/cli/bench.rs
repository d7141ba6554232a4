//! `memtrace bench`: measures memtrace's overhead, throughput, footprint and start-up, and
//! prints the figures as a markdown table beside their targets. Also the hidden workloads the
//! benchmark runs (`memtrace workload bench ...`).
use std::{io::Write, process::ExitCode, time::Duration};

use clap::{Args, Subcommand};
use memtrace::{
    Error,
    collect::caps::Need,
    collect::{
        floor::{Floor, FloorKind},
        kernel::KernelFacts,
    },
    lab::bench::{self, Plan, Section, host::Host, table},
    lab::workload::bench::{ChurnPlan, active, churn, spawn_tree},
    lab::workload::pipe,
};

use super::args;

/// Options of `memtrace bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short run (under a minute, for CI): fewer pairs and iterations, smaller process
    /// counts, and no bpftrace install.
    #[arg(long)]
    quick: bool,
    /// Run only these sections (repeat, or separate with commas): overhead, bpf-stats,
    /// switches, swap, client, throughput, footprint, churn, recording, startup, scrape.
    #[arg(long, value_name = "SECTION", value_delimiter = ',', value_parser = section)]
    only: Vec<Section>,
}

/// A section's name, as `--only` takes it.
fn section(name: &str) -> Result<Section, String> {
    Section::named(name).ok_or_else(|| {
        let names: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
        format!("no such section (one of: {})", names.join(", "))
    })
}

/// Runs the benchmarks.
pub fn run(args: BenchArgs) -> Result<ExitCode, Error> {
    super::start_as_root(Need::Sandbox)?;
    let command: Vec<String> = std::env::args().collect();
    let host = Host::read(command.join(" "));
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let rows = bench::run(&plan, &args.only)?;
    let mut out =
        super::stdio::report_stdout().map_err(|e| Error::io("the table is lost: stdout", e))?;
    let written = host
        .write(&mut out)
        .and_then(|()| writeln!(out))
        .and_then(|()| table::write_markdown(&rows, &mut out))
        .and_then(|()| bench::write_notes(&plan, &mut out))
        .and_then(|()| out.flush());
    written.map_err(|e| Error::io("writing the table", e))?;
    Ok(ExitCode::SUCCESS)
}

/// The workloads of `memtrace bench` (hidden: `memtrace workload bench ...`).
#[derive(Debug, Subcommand)]
pub enum BenchWorkload {
    /// Map anonymous memory, touch every page, unmap; repeat. Prints the time per fault.
    Churn {
        /// Size of each mapping.
        #[arg(long, default_value_t = 64)]
        mib: usize,
        /// Timed repetitions.
        #[arg(long, default_value_t = 10)]
        iterations: u64,
        /// Repeat for this long instead of a number of times.
        #[arg(long, value_parser = args::duration)]
        duration: Option<Duration>,
        /// Read the pages (zero-page faults) instead of writing them.
        #[arg(long)]
        read: bool,
    },
    /// The floor: the cheapest programs on memtrace's hooks (empty, timing each fault with no
    /// attribution, or timing it and reading its thread; or an empty one on sched_switch),
    /// attached until SIGINT or SIGTERM.
    /// Says "memtrace: tracing" on stderr once attached; prints what it timed.
    Floor {
        #[arg(long, value_enum)]
        kind: FloorArg,
    },
    /// Two processes pinned to one CPU pass a byte through two pipes: two context switches a
    /// round trip. Prints the time per round trip.
    Pipe {
        #[arg(long, default_value_t = 200_000)]
        round_trips: u64,
        #[arg(long, default_value_t = 0)]
        cpu: usize,
    },
    /// Fork short-lived children one after another, each touching a few pages.
    Spawn {
        #[arg(long)]
        processes: u64,
        /// Pages each child touches.
        #[arg(long, default_value_t = 16)]
        pages: usize,
    },
    /// Keep this many children alive, each touching a few fresh pages once a second.
    Active {
        #[arg(long)]
        processes: u64,
        /// Pages each child touches per second.
        #[arg(long, default_value_t = 16)]
        pages: usize,
        /// How long they live.
        #[arg(long, value_parser = args::duration)]
        duration: Duration,
    },
}

/// Which floor (`memtrace workload bench floor --kind`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FloorArg {
    Empty,
    Timed,
    Attributed,
    Switch,
}

/// Attaches the floor, waits for SIGINT or SIGTERM, and prints the faults it timed.
fn run_floor(kind: FloorArg) -> Result<String, Error> {
    let kind = match kind {
        FloorArg::Empty => FloorKind::Empty,
        FloorArg::Timed => FloorKind::Timed,
        FloorArg::Attributed => FloorKind::Attributed,
        FloorArg::Switch => FloorKind::Switch,
    };
    // Blocked before anything else, so that a signal sent once we are ready is waited for.
    // SAFETY: sigset operations on a local set; sigprocmask on this (only) thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let facts = KernelFacts::from_running_kernel()?;
    let floor = Floor::start(kind, &facts)?;
    errln!("memtrace: tracing (floor {kind:?})");
    let mut signal = 0;
    // SAFETY: waits on the blocked set.
    unsafe { libc::sigwait(&set, &mut signal) };
    let (faults, ns) = floor.timed();
    drop(floor);
    Ok(serde_json::json!({ "faults": faults, "ns": ns }).to_string())
}

/// Runs one benchmark workload and prints its outcome as one JSON line.
pub fn run_workload(workload: BenchWorkload) -> Result<ExitCode, Error> {
    let line = match workload {
        BenchWorkload::Floor { kind } => Ok(run_floor(kind)?),
        BenchWorkload::Pipe { round_trips, cpu } => {
            let outcome =
                pipe::run(round_trips, cpu).map_err(|e| Error::io("pipe ping-pong", e))?;
            serde_json::to_string(&outcome)
        }
        BenchWorkload::Churn {
            mib,
            iterations,
            duration,
            read,
        } => {
            let plan = ChurnPlan {
                mib,
                iterations,
                duration,
                read,
            };
            let outcome = churn(&plan).map_err(|e| Error::io("fault loop", e))?;
            serde_json::to_string(&outcome)
        }
        BenchWorkload::Active {
            processes,
            pages,
            duration,
        } => {
            let outcome =
                active(processes, pages, duration).map_err(|e| Error::io("active processes", e))?;
            serde_json::to_string(&outcome)
        }
        BenchWorkload::Spawn { processes, pages } => {
            let outcome = spawn_tree(processes, pages).map_err(|e| Error::io("process tree", e))?;
            serde_json::to_string(&outcome)
        }
    };
    let line = line.map_err(|e| Error::io("encoding the outcome", e.into()))?;
    outln!("{line}");
    Ok(ExitCode::SUCCESS)
}
