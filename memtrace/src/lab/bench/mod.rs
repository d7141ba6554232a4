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
pub mod tracefs;
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
                // The multiple of the timed floor moved by ±0.1× between runs of 15 pairs.
                anchor_pairs: 45,
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
                anchor_pairs: 6,
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

/// The benchmark's sections, in the order they run, each with the name `--only` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Overhead,
    BpfStats,
    Switches,
    Swap,
    Client,
    Throughput,
    Footprint,
    Churn,
    Recording,
    Startup,
    Scrape,
}

impl Section {
    pub const ALL: [Section; 11] = [
        Self::Overhead,
        Self::BpfStats,
        Self::Switches,
        Self::Swap,
        Self::Client,
        Self::Throughput,
        Self::Footprint,
        Self::Churn,
        Self::Recording,
        Self::Startup,
        Self::Scrape,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Overhead => "overhead",
            Self::BpfStats => "bpf-stats",
            Self::Switches => "switches",
            Self::Swap => "swap",
            Self::Client => "client",
            Self::Throughput => "throughput",
            Self::Footprint => "footprint",
            Self::Churn => "churn",
            Self::Recording => "recording",
            Self::Startup => "startup",
            Self::Scrape => "scrape",
        }
    }

    /// What the progress lines and a failed section's row call it.
    fn title(self) -> &'static str {
        match self {
            Self::Overhead => "fault overhead",
            Self::BpfStats => "BPF run-time stats",
            Self::Switches => "context switches",
            Self::Swap => "swap storm",
            Self::Client => "real client",
            Self::Throughput => "throughput",
            Self::Footprint => "footprint",
            Self::Churn => "footprint under churn",
            Self::Recording => "recording size",
            Self::Startup => "start-up",
            Self::Scrape => "scrape",
        }
    }

    /// The section called `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Runs the benchmarks of `only` (every one when empty) and returns the table's rows. A
/// benchmark that cannot run here becomes a row saying why; the others still run.
pub fn run(plan: &Plan, only: &[Section]) -> Result<Vec<Row>, Error> {
    let exe = load::memtrace_binary()?;
    interrupt::install();
    let mut rows = Vec::new();
    for section in Section::ALL {
        if !only.is_empty() && !only.contains(&section) {
            continue;
        }
        if interrupt::check().is_err() {
            break;
        }
        progress!("memtrace bench: {}", section.title());
        match run_section(&exe, plan, section) {
            Ok(more) => rows.extend(more),
            Err(e) => {
                progress!("memtrace bench: {} failed: {e}", section.title());
                rows.push(Row::unavailable(section.title(), "—", "—", &e.to_string()));
            }
        }
    }
    interrupt::check()?;
    Ok(rows)
}

fn run_section(exe: &Path, plan: &Plan, section: Section) -> Result<Vec<Row>, Error> {
    match section {
        Section::Overhead => run_overhead(exe, plan),
        Section::BpfStats => progstats::run(exe, &plan.overhead.churn),
        Section::Switches => switches::run(exe, &plan.switches),
        Section::Swap => swap::run(exe, &plan.swap),
        Section::Client => client::run(exe, &plan.client),
        Section::Throughput => throughput::run(exe, &plan.throughput),
        Section::Footprint => footprint::run(exe, &plan.footprint),
        Section::Churn => churn::run(exe, plan.churn),
        Section::Recording => recording::run(exe, &plan.recording),
        Section::Startup => startup::run(exe, plan.startup_runs),
        Section::Scrape => scrape::run(&plan.scrape),
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
        Ok(Some(tracers::ATTRIBUTED_FLOOR)),
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
        // The kernel side alone, its reader behind: forced wake-ups must not pile up.
        Ok(Some(Tracer::ReaderStopped)),
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
         alternate traced/untraced (each untraced run right after its traced one), the \
         conditions in reverse order every other round; tracers run system-wide; nothing is \
         pinned. A multiple of the timed floor is 1 + the median over the rounds of (this \
         pair's extra time − the timed floor's pair's) / the timed floor's median extra time; \
         its 90 % interval is the sign test's for that median. MB = 10^6 bytes."
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_by_their_names() {
        for section in Section::ALL {
            assert_eq!(Section::named(section.name()), Some(section));
        }
        assert_eq!(Section::named("Overhead"), None);
        assert_eq!(Section::named(""), None);
    }
}
