//! Runs the benchmark's workloads as child processes of the memtrace binary (`memtrace
//! workload ...`), so that each one is a fresh process whose faults can be told apart.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

use serde::de::DeserializeOwned;

use crate::{
    Error,
    lab::workload::{
        bench::{ActiveOutcome, ChurnOutcome, ChurnPlan, SpawnOutcome},
        pipe::PipeOutcome,
    },
};

/// The running memtrace binary, which also holds the workloads.
pub fn memtrace_binary() -> Result<PathBuf, Error> {
    std::env::current_exe().map_err(|e| Error::io("locating the memtrace binary", e))
}

/// `memtrace workload bench churn ...` for a plan.
fn churn_command(exe: &Path, plan: &ChurnPlan) -> Command {
    let mut command = Command::new(exe);
    command.args(["workload", "bench", "churn"]);
    command.args(["--mib", &plan.mib.to_string()]);
    command.args(["--iterations", &plan.iterations.to_string()]);
    if let Some(limit) = plan.duration {
        command.args(["--duration", &format!("{}ms", limit.as_millis().max(1))]);
    }
    if plan.read {
        command.arg("--read");
    }
    command
}

/// Runs the fault loop to completion.
pub fn run_churn(exe: &Path, plan: &ChurnPlan) -> Result<ChurnOutcome, Error> {
    let output = churn_command(exe, plan)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running the fault loop", e))?;
    parse_output(&output, "fault loop")
}

/// Starts the fault loop; collect its outcome with [`finish_churn`].
pub fn spawn_churn(exe: &Path, plan: &ChurnPlan) -> Result<Child, Error> {
    churn_command(exe, plan)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting the fault loop", e))
}

/// Waits for a fault loop started by [`spawn_churn`].
pub fn finish_churn(child: Child) -> Result<ChurnOutcome, Error> {
    let output = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for the fault loop", e))?;
    parse_output(&output, "fault loop")
}

/// Two processes pinned to CPU 0 pass a byte back and forth `round_trips` times.
pub fn run_pipe(exe: &Path, round_trips: u64) -> Result<PipeOutcome, Error> {
    let output = Command::new(exe)
        .args(["workload", "bench", "pipe"])
        .args(["--round-trips", &round_trips.to_string(), "--cpu", "0"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running the pipe ping-pong", e))?;
    parse_output(&output, "pipe ping-pong")
}

/// Forks `processes` short-lived children that each touch `pages` pages.
pub fn run_spawn_tree(exe: &Path, processes: u64, pages: usize) -> Result<SpawnOutcome, Error> {
    let output = Command::new(exe)
        .args(["workload", "bench", "spawn"])
        .args(["--processes", &processes.to_string()])
        .args(["--pages", &pages.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running the process tree", e))?;
    parse_output(&output, "process tree")
}

/// Keeps `processes` children alive for `duration`, each touching `pages` pages a second.
pub fn run_active(
    exe: &Path,
    processes: u64,
    pages: usize,
    duration: std::time::Duration,
) -> Result<ActiveOutcome, Error> {
    let output = Command::new(exe)
        .args(["workload", "bench", "active"])
        .args(["--processes", &processes.to_string()])
        .args(["--pages", &pages.to_string()])
        .args(["--duration", &format!("{}ms", duration.as_millis())])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running the active processes", e))?;
    parse_output(&output, "active processes")
}

/// The JSON line a workload printed, once it exited cleanly.
pub fn parse_output<T: DeserializeOwned>(output: &Output, what: &'static str) -> Result<T, Error> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::InvalidArgument {
            what,
            value: output.status.to_string(),
            reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| Error::InvalidArgument {
        what,
        value: line.chars().take(80).collect(),
        reason: format!("not its JSON outcome: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn output(code: i32, stdout: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: b"boom".to_vec(),
        }
    }

    #[test]
    fn the_last_line_is_the_outcome() {
        let text = "noise\n{\"pid\":7,\"iterations\":2,\"faults\":512,\"elapsed_ns\":1000,\
                    \"process_faults\":600}\n";
        let outcome: ChurnOutcome = parse_output(&output(0, text), "x").expect("parse");
        assert_eq!(outcome.faults, 512);
    }

    #[test]
    fn failures_and_garbage_are_errors() {
        let failed = parse_output::<ChurnOutcome>(&output(1, ""), "x").expect_err("fails");
        assert!(failed.to_string().contains("boom"));
        assert!(parse_output::<ChurnOutcome>(&output(0, "garbage"), "x").is_err());
    }

    #[test]
    fn command_lines() {
        let plan = ChurnPlan {
            mib: 64,
            iterations: 5,
            duration: Some(std::time::Duration::from_secs(2)),
            read: true,
        };
        let command = churn_command(Path::new("/bin/memtrace"), &plan);
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            args,
            [
                "workload",
                "bench",
                "churn",
                "--mib",
                "64",
                "--iterations",
                "5",
                "--duration",
                "2000ms",
                "--read"
            ]
        );
    }
}
