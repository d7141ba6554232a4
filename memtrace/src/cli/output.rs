//! What record and demo print: the live line and the final report, to the right streams.
use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
};

use memtrace::{
    Error,
    collect::{
        filter::Filter,
        session::{Recording, Tick},
    },
    report::{Report, bars, json, live, table},
};

/// A single-threaded runtime: one core drains and aggregates, the other stays with the load.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the event loop", e))
}

/// Prints the live line on stderr (stdout stays for the report).
pub fn live_line(tick: &Tick<'_>) {
    let _ = live::write(tick, &mut io::stderr().lock());
}

/// Renders the report: table (and bars for one process) on stdout, or on stderr when the JSON
/// goes to stdout; JSON to the file named by `--json`.
pub fn final_report(
    recording: &Recording,
    filter: &Filter,
    top: usize,
    json_path: Option<&Path>,
) -> Result<Report, Error> {
    let report = Report::new(recording, filter.describe());
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
