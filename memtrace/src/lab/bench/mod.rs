//! `memtrace bench`: what memtrace costs the traced machine, measured rather than asserted.
//!
//! Every figure comes from child processes: the workloads are `memtrace workload bench ...`
//! (timed from inside), and memtrace is the `memtrace record` binary run as users run it, started
//! before and stopped with SIGINT after each measurement. Pure arithmetic (`stats`, `targets`)
//! and rendering (`table`, `host`) are apart and unit-tested.
mod child;
mod churn;
mod client;
mod footprint;
pub mod host;
mod interrupt;
mod load;
mod overhead;
mod procfs;
mod progstats;
mod recorded;
mod recording;
mod scrape;
mod startup;
pub mod stats;
mod swap;
mod switches;
pub mod table;
pub mod targets;
mod throughput;
mod tracefs;
mod tracers;

use std::{
    io::{self, Write},
    path::Path,
    time::Duration,
};

use self::{
    client::ClientPlan, footprint::FootprintPlan, overhead::OverheadPlan, recording::RecordingPlan,
    scrape::ScrapePlan, swap::SwapPlan, switches::SwitchPlan, table::Row,
    throughput::ThroughputPlan, tracers::Tracer,
};
use crate::{Error, collect::floor::FloorKind, lab::workload::bench::ChurnPlan};

/// How much of everything to measure.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The short form (for CI).
    pub quick: bool,
    pub overhead: OverheadPlan,
    pub swap: SwapPlan,
    pub throughput: ThroughputPlan,
    pub footprint: FootprintPlan,
    /// How long memtrace records under fork churn.
    pub churn: Duration,
    pub recording: RecordingPlan,
    /// Launches timed for start-up.
    pub startup_runs: usize,
    pub scrape: ScrapePlan,
    pub switches: SwitchPlan,
    pub client: ClientPlan,
}

impl Plan {
    /// The full benchmark: a few minutes.
    pub fn full() -> Self {
        Self {
            quick: false,
            overhead: OverheadPlan {
                // This VM's run-to-run noise is mostly per run (which CPU, what the host does):
                // many short pairs beat a few long ones.
                pairs: 15,
                churn: churn(64, 10, None),
            },
            swap: SwapPlan {
                pairs: 5,
                limit_mib: 64,
                swap_mib: 160,
            },
            throughput: ThroughputPlan {
                loads: vec![1, 2],
                churn: zero_page_churn(Duration::from_secs(5)),
            },
            footprint: FootprintPlan {
                counts: vec![1, 1_000, 10_000],
                runs: 5,
                pages: 16,
            },
            churn: Duration::from_secs(60),
            recording: RecordingPlan {
                counts: vec![1, 1_000, 10_000],
                pages: 16,
                duration: Duration::from_secs(30),
            },
            startup_runs: 5,
            scrape: ScrapePlan {
                cgroups: 1_000,
                runs: 21,
            },
            switches: SwitchPlan {
                pairs: 9,
                round_trips: 300_000,
            },
            client: ClientPlan {
                pairs: 5,
                requests: 200_000,
                install: true,
            },
        }
    }

    /// The short form: under a minute.
    pub fn quick() -> Self {
        Self {
            quick: true,
            overhead: OverheadPlan {
                pairs: 3,
                churn: churn(64, 10, None),
            },
            swap: SwapPlan {
                pairs: 2,
                ..Self::full().swap
            },
            throughput: ThroughputPlan {
                loads: vec![2],
                churn: zero_page_churn(Duration::from_secs(2)),
            },
            footprint: FootprintPlan {
                runs: 3,
                ..Self::full().footprint
            },
            churn: Duration::from_secs(15),
            recording: RecordingPlan {
                duration: Duration::from_secs(5),
                ..Self::full().recording
            },
            startup_runs: 5,
            scrape: ScrapePlan {
                runs: 5,
                ..Self::full().scrape
            },
            switches: SwitchPlan {
                pairs: 3,
                round_trips: 100_000,
            },
            client: ClientPlan {
                pairs: 2,
                requests: 50_000,
                install: false,
            },
        }
    }
}

fn churn(mib: usize, iterations: u64, duration: Option<Duration>) -> ChurnPlan {
    ChurnPlan {
        mib,
        iterations,
        duration,
        read: false,
    }
}

/// Read faults map the shared zero page: the cheapest fault, so the highest event rate two
/// cores can offer.
fn zero_page_churn(duration: Duration) -> ChurnPlan {
    ChurnPlan {
        read: true,
        ..churn(64, 0, Some(duration))
    }
}

/// Runs every benchmark and returns the table's rows. A benchmark that cannot run here
/// becomes a row saying why; the others still run.
pub fn run(plan: &Plan) -> Result<Vec<Row>, Error> {
    let exe = load::memtrace_binary()?;
    interrupt::install();
    let mut rows = Vec::new();
    section(&mut rows, "fault overhead", || run_overhead(&exe, plan));
    section(&mut rows, "BPF run-time stats", || {
        progstats::run(&exe, &plan.overhead.churn)
    });
    section(&mut rows, "context switches", || {
        switches::run(&exe, &plan.switches)
    });
    section(&mut rows, "swap storm", || swap::run(&exe, &plan.swap));
    section(&mut rows, "real client", || client::run(&exe, &plan.client));
    section(&mut rows, "throughput", || {
        throughput::run(&exe, &plan.throughput)
    });
    section(&mut rows, "footprint", || {
        footprint::run(&exe, &plan.footprint)
    });
    section(&mut rows, "footprint under churn", || {
        churn::run(&exe, plan.churn)
    });
    section(&mut rows, "recording size", || {
        recording::run(&exe, &plan.recording)
    });
    section(&mut rows, "start-up", || {
        startup::run(&exe, plan.startup_runs)
    });
    section(&mut rows, "scrape", || scrape::run(&plan.scrape));
    interrupt::check()?;
    Ok(rows)
}

fn section(rows: &mut Vec<Row>, name: &str, f: impl FnOnce() -> Result<Vec<Row>, Error>) {
    if interrupt::check().is_err() {
        return;
    }
    progress!("memtrace bench: {name}");
    match f() {
        Ok(more) => rows.extend(more),
        Err(e) => {
            progress!("memtrace bench: {name} failed: {e}");
            rows.push(Row::unavailable(name, "—", "—", &e.to_string()));
        }
    }
}

/// The overhead conditions: untraced, memtrace as run by default, with the fault hooks only
/// (what the reclaim hooks add), with the other end hook, then bpftrace and perf stat where
/// they can run. tracefs (for bpftrace) is mounted for this section only, if at all.
fn run_overhead(exe: &Path, plan: &Plan) -> Result<Vec<Row>, Error> {
    let mut tracefs = None;
    let bpftrace = tracers::bpftrace(!plan.quick).and_then(|binary| {
        tracefs = Some(tracefs::Tracefs::ensure().map_err(|e| e.to_string())?);
        Ok(Tracer::Bpftrace { binary })
    });
    let perf = tracers::perf().map(|binary| Tracer::PerfStat { binary });
    let conditions = vec![
        Ok(None),
        Ok(Some(Tracer::Floor {
            kind: FloorKind::Empty,
        })),
        Ok(Some(tracers::TIMED_FLOOR)),
        Ok(Some(tracers::MEMTRACE)),
        Ok(Some(Tracer::Memtrace {
            fault_end: "auto",
            faults_only: false,
            recording: true,
            stacks: false,
        })),
        Ok(Some(Tracer::Memtrace {
            fault_end: "auto",
            faults_only: true,
            recording: false,
            stacks: false,
        })),
        // Every page the workload's faults bring in walks two stacks.
        Ok(Some(Tracer::Memtrace {
            fault_end: "auto",
            faults_only: false,
            recording: false,
            stacks: true,
        })),
        // Ten times the scrape rate of a 1 s Prometheus, so that scrapes land inside the
        // short fault loops.
        Ok(Some(Tracer::Serve { scrape_ms: 100 })),
        Ok(Some(Tracer::Memtrace {
            fault_end: "perf",
            faults_only: false,
            recording: false,
            stacks: false,
        })),
        bpftrace
            .map(Some)
            .map_err(|reason| (tracers::BPFTRACE_LABEL.to_string(), reason)),
        perf.map(Some)
            .map_err(|reason| (tracers::PERF_STAT_LABEL.to_string(), reason)),
    ];
    let rows = overhead::run(exe, &plan.overhead, conditions);
    drop(tracefs);
    rows
}

/// How to read the table, printed below it.
pub fn write_notes(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "Overhead rows: median time per fault traced vs untraced (medians of the runs), then \
         the median of the per-pair ratios; spread is the lowest and highest pair ratio. Runs \
         alternate traced/untraced (each untraced run right after its traced one); tracers run \
         system-wide; nothing is pinned. MB = 10^6 bytes."
    )?;
    if plan.quick {
        writeln!(
            out,
            "--quick: fewer pairs and iterations, one throughput load, no bpftrace install; \
             use `cargo xtask bench` for figures to publish."
        )?;
    }
    Ok(())
}
