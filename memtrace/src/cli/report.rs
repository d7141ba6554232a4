//! `memtrace report FILE`: every view of a recorded run, rebuilt from its samples.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Args;
use memtrace::{Error, recording::read_model, report::View};

use super::{args, hlog, output};

/// Options of `memtrace report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The recording (`memtrace record -o FILE`).
    #[arg(value_name = "FILE")]
    recording: PathBuf,
    /// Write the report as JSON to FILE (`-` for stdout; the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as one self-contained HTML page with charts to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the latency distributions as an HdrHistogram interval log to FILE, one tag per
    /// process and fault class or stall kind (`<pid>.<start>.<comm>.<class-or-kind>`).
    #[arg(long, value_name = "FILE")]
    hlog: Option<PathBuf>,
    /// Show only this process (repeat for more); the timeline then follows them.
    #[arg(short, long = "pid", value_name = "PID")]
    pids: Vec<u32>,
    /// Number of processes in the tables.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Only the intervals that start at or after this time into the recording (30s, 2m).
    #[arg(long, value_parser = args::offset)]
    from: Option<Duration>,
    /// Only the intervals that start before this time into the recording.
    #[arg(long, value_parser = args::offset)]
    to: Option<Duration>,
    /// Write the fault stacks of a `record --stacks` recording in the folded format
    /// (`comm;frame;...;frame pages`, Brendan Gregg's).
    #[arg(long, value_name = "FILE")]
    folded: Option<PathBuf>,
    /// Write their flame graph as an SVG, pages as the weight.
    #[arg(long, value_name = "FILE")]
    flamegraph: Option<PathBuf>,
}

/// Reads the recording, says how it ends if it ends early, and renders the report.
pub fn run(args: ReportArgs) -> Result<ExitCode, Error> {
    let from_ns = args.from.map_or(0, |d| d.as_nanos() as u64);
    let to_ns = args.to.map_or(u64::MAX, |d| d.as_nanos() as u64);
    if from_ns >= to_ns {
        return Err(Error::InvalidArgument {
            what: "time window",
            value: format!("--from {:?} --to {:?}", args.from, args.to),
            reason: "--from must come before --to".into(),
        });
    }
    output::check_json_path(args.json.as_deref())?;
    if let Some(path) = &args.hlog {
        hlog::check_path(path)?;
    }
    output::check_json_path(args.html.as_deref())?;
    output::check_json_path(args.folded.as_deref())?;
    output::check_json_path(args.flamegraph.as_deref())?;
    let focus = (!args.pids.is_empty()).then_some(args.pids.as_slice());
    let (model, intervals, problem) = read_model(
        &args.recording,
        |start_ns| (from_ns..to_ns).contains(&start_ns),
        focus,
    )?;
    if (args.folded.is_some() || args.flamegraph.is_some()) && !model.stacks.enabled {
        return Err(Error::InvalidArgument {
            what: "recording",
            value: args.recording.display().to_string(),
            reason: "it has no fault stacks for --folded or --flamegraph: record with --stacks"
                .into(),
        });
    }
    if let Some(problem) = &problem {
        errln!(
            "memtrace: {}: {problem}; the report covers the {intervals} complete intervals before it",
            args.recording.display()
        );
    }
    let options = output::ReportOptions {
        view: View {
            pids: (!args.pids.is_empty()).then(|| args.pids.clone()),
        },
        top: args.top,
        json: args.json.as_deref(),
        html: args.html.as_deref(),
        folded: args.folded.as_deref(),
        flamegraph: args.flamegraph.as_deref(),
    };
    let report = output::final_report(&model, &options);
    // Written even when stdout is lost, like the JSON: it may be the part the user wanted.
    if let Some(path) = &args.hlog {
        let selection = hlog::Selection {
            pids: (!args.pids.is_empty()).then(|| args.pids.clone()),
            window_ns: from_ns..to_ns,
        };
        hlog::write(&args.recording, path, &selection)?;
    }
    report?;
    Ok(ExitCode::SUCCESS)
}
