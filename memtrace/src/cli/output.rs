//! What record, demo and report share: running a session with its live views, and printing the
//! final report to the right streams.
use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::Path,
};

use memtrace::{
    Error,
    collect::{
        decode::Record,
        filter::{CgroupTarget, Filter},
        host::host_facts,
        kernel::KernelFacts,
        loader::{Preload, Tracer, TracerConfig},
        machine::monotonic_ns,
        session::{self, Callbacks, RunOptions, SampleSink},
    },
    model::{Model, Tick, oom::OomKill},
    report::{
        Report, View, bars, events, files, gfp::GfpNames, growth, html, json, live, stacks, stalls,
        table, timeline, verdict,
    },
    samples::{Header, machine::Thresholds},
};

use super::stdio;

/// A single-threaded runtime: one core drains and aggregates, the other stays with the load.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the event loop", e))
}

/// The header of a recording of `filter`, with the machine's facts as they are now.
pub fn header(filter: &Filter, thresholds: Thresholds, facts: &KernelFacts) -> Header {
    Header {
        memtrace_version: env!("CARGO_PKG_VERSION").to_string(),
        traced: filter.describe(),
        focus_pids: filter.pids().to_vec(),
        thresholds,
        host: host_facts(&facts.gfp_bits),
        fault_time_split: true,
        ..Header::default()
    }
}

/// Reads the kernel's facts, loads and attaches the kernel programs, and says which hooks could
/// not be attached (the rest of the picture is still traced). The BTF reads that loading and
/// attaching need run on threads of their own while the facts are read.
pub fn start_tracer(config: &TracerConfig) -> Result<(KernelFacts, Tracer), Error> {
    let preload = Preload::start();
    let facts = KernelFacts::from_running_kernel()?;
    let tracer = Tracer::start_preloaded(config, &facts, preload)?;
    for hook in tracer.hooks.iter().filter(|h| h.error.is_some()) {
        errln!(
            "memtrace: warning: {} not attached: {}",
            hook.hook,
            hook.error.as_deref().unwrap_or("")
        );
    }
    Ok((facts, tracer))
}

/// How a session shows itself while it runs.
pub struct LiveViews {
    /// No live line.
    pub quiet: bool,
    /// `--min-stall`: print every stall, major fault and swap-in at least this long.
    pub min_stall_ns: Option<u64>,
    /// The per-event log goes to stderr (stdout carries JSON).
    pub log_to_stderr: bool,
}

/// Runs a session with the live line, the event log and the OOM blocks; returns the model.
pub fn run_session(
    tracer: Tracer,
    options: &RunOptions,
    header: Header,
    sink: &mut dyn SampleSink,
    views: &LiveViews,
) -> Result<Model, Error> {
    let thresholds = header.thresholds;
    let focus = header.focus_pids.clone();
    let gfp = GfpNames::from_enum(header.host.gfp_bits.iter().map(|(n, b)| (n.as_str(), *b)));
    let mut log = views
        .min_stall_ns
        .map(|min_ns| EventLog::new(min_ns, &gfp, views.log_to_stderr));
    let callbacks = Callbacks {
        on_tick: |tick: Tick<'_>| {
            if !views.quiet {
                let _ = live::write(&tick, &thresholds, &focus, &mut io::stderr().lock());
            }
        },
        on_record: |record: &Record| {
            if let Some(log) = log.as_mut() {
                log.write(record);
            }
        },
        on_oom: oom_live,
        on_cgroup_gone: |target: &CgroupTarget| {
            errln!(
                "memtrace: warning: the traced cgroup {} was removed; nothing in it can be \
                 traced any more (a cgroup created again under that name is a new one)",
                memtrace::report::units::printable(&target.path.display().to_string())
            );
        },
    };
    runtime()?.block_on(session::record(tracer, options, header, sink, callbacks))
}

/// Prints an OOM kill's block on stderr as it happens (also with --quiet: kills are rare and
/// they are the news).
pub fn oom_live(kill: &OomKill) {
    let _ = memtrace::report::oom::write(kill, &mut io::stderr().lock());
}

/// The per-event log of `--min-stall`.
struct EventLog<'a> {
    min_ns: u64,
    gfp: &'a GfpNames,
    to_stderr: bool,
    header_done: bool,
}

impl<'a> EventLog<'a> {
    fn new(min_ns: u64, gfp: &'a GfpNames, to_stderr: bool) -> Self {
        Self {
            min_ns,
            gfp,
            to_stderr,
            header_done: false,
        }
    }

    /// Prints `record` if it qualifies.
    fn write(&mut self, record: &Record) {
        let mut out: Box<dyn Write> = if self.to_stderr {
            Box::new(io::stderr().lock())
        } else {
            Box::new(io::stdout().lock())
        };
        if !self.header_done {
            self.header_done = true;
            let _ = events::write_header(&mut out);
        }
        let now_mono = monotonic_ns();
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let wall = |mono: u64| events::wall_label(mono, now_mono, now_unix);
        let _ = events::write_if_slow(record, self.min_ns, self.gfp, wall, &mut out);
    }
}

/// Checks, before anything is traced, that the JSON can be written where asked, and leaves
/// nothing behind: a file it had to create for the check is removed again (a later error must
/// not leave an empty report), and a FIFO or device is not opened (a reader would see an
/// empty report).
pub fn check_json_path(path: Option<&Path>) -> Result<(), Error> {
    let Some(path) = path.filter(|p| *p != Path::new("-")) else {
        return Ok(());
    };
    let output = |source| Error::Output {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(output(io::Error::other("it is a directory"))),
        Ok(meta) if !meta.is_file() => return Ok(()),
        _ => {}
    }
    let existed = path.symlink_metadata().is_ok();
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(output)?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// How the final report is rendered.
pub struct ReportOptions<'a> {
    /// Which processes to show.
    pub view: View,
    /// Rows of the tables.
    pub top: usize,
    /// `--json FILE` (`-`: stdout, the text then goes to stderr).
    pub json: Option<&'a Path>,
    /// `--html FILE`: the page with the charts.
    pub html: Option<&'a Path>,
    /// `--folded FILE` and `--flamegraph FILE`: the fault stacks (`record --stacks`).
    pub folded: Option<&'a Path>,
    pub flamegraph: Option<&'a Path>,
}

/// Renders the report: tables (and bars for one process) on stdout, or on stderr when the JSON
/// goes to stdout; the JSON to the file named by `--json`, written whole or not at all.
///
/// A report that cannot be written (stdout closed, a broken pipe) is an error naming the
/// stream; the JSON is still written, since it may be the part the user wanted.
pub fn final_report(model: &Model, options: &ReportOptions<'_>) -> Result<Report, Error> {
    let report = Report::new(model, &options.view);
    let json_to_stdout = options.json == Some(Path::new("-"));
    let text = || -> io::Result<()> {
        let mut out: Box<dyn Write> = if json_to_stdout {
            Box::new(io::stderr().lock())
        } else {
            Box::new(stdio::report_stdout()?)
        };
        write_text(&report, options.top, &mut out)?;
        out.flush()
    };
    let stream = if json_to_stdout { "stderr" } else { "stdout" };
    let text = text().map_err(|e| Error::io(format!("the report is lost: {stream}"), e));
    match options.json {
        None => {}
        Some(_) if json_to_stdout => {
            stdio::report_stdout()
                .and_then(|mut out| json::write(&report, &mut out).and_then(|()| out.flush()))
                .map_err(|e| Error::io("the JSON report is lost: stdout", e))?;
        }
        Some(path) => write_file(path, |out| json::write(&report, out))?,
    }
    if let Some(path) = options.html {
        let mut tables = Vec::new();
        write_text(&report, options.top, &mut tables)
            .map_err(|e| Error::io("rendering the tables", e))?;
        let tables = String::from_utf8_lossy(&tables);
        let curves = html::curve_charts(model);
        write_file(path, |out| html::write(&report, &curves, &tables, out))?;
    }
    if let Some(path) = options.folded {
        write_file(path, |out| stacks::write_folded(&model.stacks, out))?;
    }
    if let Some(path) = options.flamegraph {
        let title = format!("Pages brought in by faults: {}", report.traced);
        write_file(path, |out| {
            stacks::write_flamegraph(&model.stacks, &title, out)
        })?;
    }
    text?;
    Ok(report)
}

/// Every text section of the report.
pub fn write_text(report: &Report, top: usize, out: &mut impl Write) -> io::Result<()> {
    table::write(report, top, out)?;
    if let [process] = report.processes.as_slice() {
        bars::write_process(process, out)?;
    }
    stalls::write(report, top, out)?;
    files::write(&report.files, out)?;
    stacks::write(&report.stacks, out)?;
    growth::write(&report.growth, out)?;
    if report
        .timeline
        .iter()
        .any(|r| r.flagged || !r.processes.is_empty())
    {
        timeline::write(&report.timeline, out)?;
        verdict::write(&report.verdicts, out)
    } else {
        writeln!(
            out,
            "\nno reclaim stalls, swap-ins or major faults in any interval"
        )
    }
}

/// Writes an output (JSON, HTML, hlog) beside `path` and renames it into place: a full disk
/// leaves the old file (or none), never half a document. The file a symbolic link names is
/// replaced, not the link; a FIFO or a device (`/dev/stdout`, `/dev/null`) is written into,
/// never replaced.
pub fn write_file(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), Error> {
    let output = |source| Error::Output {
        path: path.to_path_buf(),
        source,
    };
    let target = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if std::fs::metadata(&target).is_ok_and(|meta| !meta.is_file()) {
        let mut out = BufWriter::new(
            OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(output)?,
        );
        return write(&mut out).and_then(|()| out.flush()).map_err(output);
    }
    let mut partial = target.clone();
    partial.as_mut_os_string().push(".partial");
    let result = File::create(&partial).and_then(|file| {
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        std::fs::rename(&partial, &target)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map_err(output)
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
