//! What record and demo print: the live line and the final report, to the right streams.
use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
};

use memtrace::{
    Error,
    collect::{
        filter::{Filter, cgroup_path_of},
        session::{Recording, Tick},
    },
    model::machine::Thresholds,
    report::{
        Report, ReportContext, bars, events, gfp::GfpNames, json, live, stalls, table, timeline,
    },
};

/// A single-threaded runtime: one core drains and aggregates, the other stays with the load.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the event loop", e))
}

/// Prints the live line on stderr (stdout stays for the report).
pub fn live_line(tick: &Tick<'_>, thresholds: &Thresholds, focus: &[u32]) {
    let _ = live::write(tick, thresholds, focus, &mut io::stderr().lock());
}

/// The per-event log of `--min-stall`, on stdout.
pub struct EventLog<'a> {
    min_ns: u64,
    gfp: &'a GfpNames,
    header_done: bool,
}

impl<'a> EventLog<'a> {
    /// A log of events at least `min` long.
    pub fn new(min: std::time::Duration, gfp: &'a GfpNames) -> Self {
        Self {
            min_ns: min.as_nanos() as u64,
            gfp,
            header_done: false,
        }
    }

    /// Prints `record` if it qualifies.
    pub fn write(&mut self, record: &memtrace::decode::Record) {
        let mut out = io::stdout().lock();
        if !self.header_done {
            self.header_done = true;
            let _ = events::write_header(&mut out);
        }
        let now_mono = memtrace::collect::machine::monotonic_ns();
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let wall = |mono: u64| events::wall_label(mono, now_mono, now_unix);
        let _ = events::write_if_slow(record, self.min_ns, self.gfp, wall, &mut out);
    }
}

/// How the final report is rendered.
pub struct ReportOptions<'a> {
    pub filter: &'a Filter,
    pub top: usize,
    pub json: Option<&'a Path>,
    pub thresholds: Thresholds,
    pub gfp: &'a GfpNames,
}

/// Renders the report: table (and bars for one process) on stdout, or on stderr when the JSON
/// goes to stdout; JSON to the file named by `--json`.
pub fn final_report(recording: &Recording, options: &ReportOptions<'_>) -> Result<Report, Error> {
    let (filter, top, json_path) = (options.filter, options.top, options.json);
    let memcg_path = |id: u64| cgroup_path_of(id).map(|p| p.display().to_string());
    let context = ReportContext {
        traced: filter.describe(),
        focus: filter.pids(),
        thresholds: options.thresholds,
        gfp: options.gfp,
        memcg_path: &memcg_path,
    };
    let report = Report::new(recording, &context);
    let json_to_stdout = json_path == Some(Path::new("-"));
    let text = || -> io::Result<()> {
        let mut out: Box<dyn Write> = if json_to_stdout {
            Box::new(io::stderr().lock())
        } else {
            Box::new(io::stdout().lock())
        };
        table::write(&report, top, &mut out)?;
        if let [pid] = filter.pids()
            && let Some(process) = report.processes.iter().find(|p| p.pid == *pid)
        {
            bars::write_process(process, &mut out)?;
        }
        stalls::write(&report, top, &mut out)?;
        if report
            .timeline
            .iter()
            .any(|r| r.flagged || !r.processes.is_empty())
        {
            timeline::write(&report.timeline, &mut out)?;
        } else {
            writeln!(
                out,
                "\nno reclaim stalls, swap-ins or major faults in any interval"
            )?;
        }
        out.flush()
    };
    text().map_err(|e| Error::io("writing the report", e))?;
    match json_path {
        None => {}
        Some(path) if json_to_stdout => {
            let _ = path;
            json::write(&report, &mut io::stdout().lock())
                .map_err(|e| Error::io("writing JSON to stdout", e))?;
        }
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
            let mut out = BufWriter::new(file);
            json::write(&report, &mut out)
                .and_then(|()| out.flush())
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
    }
    Ok(report)
}
