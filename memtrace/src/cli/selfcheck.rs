//! `memtrace selfcheck`: runs sandboxed scenarios under `memtrace record` and prints each of
//! memtrace's figures beside the kernel's own (its counters, delay accounting, the kernel
//! log), with the tolerance and a verdict. Exit 0 when every figure agrees, 1 otherwise.
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Args;
use memtrace::{
    Error,
    collect::caps::Need,
    lab::selfcheck::{self, Options, table},
};

use super::output;

/// Options of `memtrace selfcheck`.
#[derive(Debug, Args)]
pub struct SelfcheckArgs {
    /// Also check direct reclaim of the whole machine: fills all but 3 GiB of free memory
    /// with a hugepage pool and reads an 8 GiB sparse file through the page cache (the pool
    /// is released after). Every process on the machine feels it.
    #[arg(long)]
    allow_global_reclaim: bool,
    /// Write the results as JSON to FILE (`-` for stdout; the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Runs the scenarios and prints the table (and the JSON).
pub fn run(args: SelfcheckArgs) -> Result<ExitCode, Error> {
    output::check_json_path(args.json.as_deref())?;
    // The sandbox's swap needs CAP_SYS_ADMIN, which also stands in for CAP_BPF and CAP_PERFMON.
    super::start_as_root(Need::Sandbox)?;
    let options = Options {
        global_reclaim: args.allow_global_reclaim,
    };
    let run = selfcheck::run(options)?;
    let json_to_stdout = args.json.as_deref() == Some(Path::new("-"));
    let text = if json_to_stdout {
        let mut err = std::io::stderr().lock();
        table::write(&run, &mut err).and_then(|()| err.flush())
    } else {
        super::stdio::report_stdout().and_then(|mut out| {
            table::write(&run, &mut out)?;
            out.flush()
        })
    };
    let stream = if json_to_stdout { "stderr" } else { "stdout" };
    let text = text.map_err(|e| Error::io(format!("the table is lost: {stream}"), e));
    match args.json.as_deref() {
        None => {}
        Some(_) if json_to_stdout => super::stdio::report_stdout()
            .and_then(|mut out| table::write_json(&run, &mut out).and_then(|()| out.flush()))
            .map_err(|e| Error::io("the JSON is lost: stdout", e))?,
        Some(path) => output::write_file(path, |out| table::write_json(&run, out))?,
    }
    text?;
    Ok(if run.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
