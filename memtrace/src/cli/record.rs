//! `memtrace record`: trace faults system-wide, of some processes, or of a cgroup.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Args;
use memtrace::{
    Error,
    collect::{
        caps::Need,
        filter::{Filter, process_of, resolve_cgroup},
        loader::{FaultEnd, TracerConfig},
        session::{NoSink, RunOptions},
    },
    recording::Writer,
    report::View,
    samples::machine::Thresholds,
};

use super::{args, output};

/// Options of `memtrace record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Trace only this process (all its threads); repeat for more.
    #[arg(short, long = "pid", value_name = "PID", conflicts_with = "cgroup")]
    pids: Vec<u32>,
    /// With --pid: also trace the processes the traced ones start from now on.
    #[arg(short = 'f', long, requires = "pids")]
    children: bool,
    /// Trace only tasks in this cgroup (a v2 directory or a v1 memory-controller one) or below.
    #[arg(short, long, value_name = "PATH")]
    cgroup: Option<PathBuf>,
    /// Stop after this long (30, 30s, 2m); until Ctrl-C when absent, or until the --pid
    /// processes exit.
    #[arg(short, long, value_parser = args::duration)]
    duration: Option<Duration>,
    /// Length of one live-view interval.
    #[arg(short, long, default_value = "1s", value_parser = args::duration)]
    interval: Duration,
    /// Write the report as JSON to FILE (`-` for stdout; the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as one self-contained HTML page with charts to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write a recording to FILE, interval by interval: `memtrace report FILE` renders
    /// every view of this run from it later, even if memtrace is killed.
    #[arg(short, long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Number of processes in the final table.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// No live line per interval.
    #[arg(short, long)]
    quiet: bool,
    /// Ring-buffer size in MiB (power of two).
    #[arg(long, default_value = "4", value_parser = args::ring_mib)]
    ring_size: u32,
    /// Hook that marks the end of a fault: memcg:count_memcg_events where the kernel has it
    /// (auto), or the perf software events PAGE_FAULTS_MIN/MAJ.
    #[arg(long, value_enum, default_value_t = EndHook::Auto)]
    fault_end: EndHook,
    /// Print every reclaim/compaction stall, major fault and swap-in of at least this latency
    /// as it happens (e.g. 1ms).
    #[arg(long, value_name = "LATENCY", value_parser = args::duration)]
    min_stall: Option<Duration>,
    /// Count the pages faults bring in under their user and kernel stacks (for
    /// `report --folded` and `--flamegraph`): a hook on every page allocation, attached only
    /// with this option.
    #[arg(long)]
    stacks: bool,
    /// With --stacks: take the stacks of one allocation in N (each then counts N times).
    #[arg(long, value_name = "N", requires = "stacks", value_parser = clap::value_parser!(u32).range(1..))]
    stacks_every: Option<u32>,
    /// With --stacks: write the stacks in the folded format (`comm;frame;...;frame pages`).
    #[arg(long, value_name = "FILE", requires = "stacks")]
    folded: Option<PathBuf>,
    /// With --stacks: write the flame graph of the stacks as an SVG, pages as the weight.
    #[arg(long, value_name = "FILE", requires = "stacks")]
    flamegraph: Option<PathBuf>,
    /// Trace page faults only: no reclaim, compaction, swap or kswapd hooks.
    #[arg(long)]
    faults_only: bool,
    /// Flag an interval when a process spent at least this share of it stalled (%).
    #[arg(long, default_value = "10", value_name = "PERCENT", value_parser = args::percent)]
    stall_threshold: f64,
    /// Flag an interval when PSI memory "some" reached this share of it (%).
    #[arg(long, default_value = "10", value_name = "PERCENT", value_parser = args::percent)]
    psi_threshold: f64,
}

/// `--fault-end` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum EndHook {
    Auto,
    Perf,
    Memcg,
}

/// Validates the arguments, loads the tracer, records, and reports.
pub fn run(args: RecordArgs) -> Result<ExitCode, Error> {
    let (filter, notes) = filter_of(&args)?;
    output::check_json_path(args.json.as_deref())?;
    output::check_json_path(args.html.as_deref())?;
    output::check_json_path(args.folded.as_deref())?;
    output::check_json_path(args.flamegraph.as_deref())?;
    super::start_as_root(Need::Trace)?;
    // The recording file is created before anything is attached: a bad path stops here.
    let mut writer = args.output.as_deref().map(Writer::create).transpose()?;
    let config = TracerConfig {
        filter: filter.clone(),
        ring_bytes: args.ring_size << 20,
        fault_end: match args.fault_end {
            EndHook::Auto => FaultEnd::Auto,
            EndHook::Perf => FaultEnd::Perf,
            EndHook::Memcg => FaultEnd::MemcgEvent,
        },
        reclaim: !args.faults_only,
        stacks_every: args.stacks.then(|| args.stacks_every.unwrap_or(1)),
    };
    let (facts, tracer) = output::start_tracer(&config)?;
    for note in &notes {
        errln!("memtrace: {note}");
    }
    let watch_pids = filter.pids().to_vec();
    // Said by the session once Ctrl-C is handled: a user (or a test) may interrupt at once.
    let announce = format!(
        "memtrace: tracing page faults of {}, and every OOM kill on the machine{}{}",
        filter.describe(),
        writer
            .as_ref()
            .map(|w| format!("; recording to {}", w.path().display()))
            .unwrap_or_default(),
        if args.duration.is_none() && watch_pids.is_empty() {
            "; Ctrl-C to stop"
        } else {
            ""
        }
    );
    let options = RunOptions {
        duration: args.duration,
        interval: args.interval,
        watch_pids,
        stacks: args.stacks,
        model: true,
        announce: Some(announce),
    };
    let thresholds = Thresholds {
        stall_pct: args.stall_threshold,
        psi_pct: args.psi_threshold,
    };
    let header = output::header(&filter, thresholds, &facts);
    let views = output::LiveViews {
        quiet: args.quiet,
        min_stall_ns: args.min_stall.map(|d| d.as_nanos() as u64),
        log_to_stderr: args.json.as_deref() == Some(std::path::Path::new("-")),
    };
    let model = match writer.as_mut() {
        Some(writer) => output::run_session(tracer, &options, header, writer, &views)?,
        None => output::run_session(tracer, &options, header, &mut NoSink, &views)?,
    };
    let report_options = output::ReportOptions {
        view: View::default(),
        top: args.top,
        json: args.json.as_deref(),
        html: args.html.as_deref(),
        folded: args.folded.as_deref(),
        flamegraph: args.flamegraph.as_deref(),
    };
    // A lost report does not hide the recording: say where it is first.
    let reported = output::final_report(&model, &report_options);
    let recorded = writer.as_ref().is_none_or(say_recorded);
    reported?;
    Ok(if recorded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Says where the recording is and how to replay it; false if it stopped early.
fn say_recorded(writer: &Writer) -> bool {
    if let Some(reason) = writer.failure() {
        errln!(
            "memtrace: the recording {} stopped after {} intervals: {reason}; it holds them, readable with `memtrace report`",
            writer.path().display(),
            writer.intervals()
        );
        return false;
    }
    errln!(
        "memtrace: recorded {} intervals to {} ({} bytes); replay with `memtrace report {}`",
        writer.intervals(),
        writer.path().display(),
        writer.bytes(),
        writer.path().display()
    );
    true
}

/// What to trace, and notes for the user: a `--pid` that names a thread stands for its process
/// (the kernel programs filter on processes), which the notes say.
fn filter_of(args: &RecordArgs) -> Result<(Filter, Vec<String>), Error> {
    if let Some(path) = &args.cgroup {
        return Ok((Filter::Cgroup(resolve_cgroup(path)?), Vec::new()));
    }
    if args.pids.is_empty() {
        return Ok((Filter::All, Vec::new()));
    }
    let mut pids = Vec::new();
    let mut notes = Vec::new();
    for &pid in &args.pids {
        let process = process_of(pid)?;
        if process != pid {
            notes.push(format!(
                "{pid} is a thread of process {process}; tracing process {process}"
            ));
        }
        if !pids.contains(&process) {
            pids.push(process);
        }
    }
    let filter = Filter::Pids {
        pids,
        children: args.children,
    };
    Ok((filter, notes))
}
