//! memtrace as a user runs it: `memtrace record --quiet --json - ...`, this very binary, in a
//! child process; its JSON report read back through [`Report`]'s own deserializer.
use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::guard::{Guarded, Stop};
use crate::{error::Error, report::Report};

/// How long `record` may take to load and attach its programs.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a scenario is traced: a safety net, the scenarios end long before.
const MAX_DURATION: &str = "120";
/// What `record` prints on stderr once its hooks are attached.
const TRACING: &str = "memtrace: tracing";

/// A running `memtrace record`.
pub struct Recorder {
    child: Guarded,
    stdout: Option<JoinHandle<std::io::Result<Vec<u8>>>>,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Recorder {
    /// Starts `memtrace record` with `args` (the filter) and waits until it traces.
    pub fn start(args: &[&str]) -> Result<Self, Error> {
        let exe = std::env::current_exe().map_err(|e| Error::io("locating memtrace", e))?;
        let mut command = Command::new(exe);
        command
            .args([
                "record",
                "--quiet",
                "--json",
                "-",
                "--duration",
                MAX_DURATION,
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Guarded::spawn(&mut command, Stop::Interrupt, "memtrace record")?;
        let mut stdout = child.take_stdout();
        // The JSON is read as it comes: a full pipe would stop memtrace before it exits.
        let stdout = std::thread::spawn(move || {
            let mut json = Vec::new();
            if let Some(out) = stdout.as_mut() {
                out.read_to_end(&mut json)?;
            }
            Ok(json)
        });
        let stderr = child.take_stderr();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            if let Some(stderr) = stderr {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            }
        });
        let mut recorder = Self {
            child,
            stdout: Some(stdout),
            stderr: rx,
            stderr_seen: Vec::new(),
        };
        recorder.wait_for_tracing()?;
        Ok(recorder)
    }

    /// Waits for the line that says the hooks are attached.
    fn wait_for_tracing(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let found = line.starts_with(TRACING);
                    self.stderr_seen.push(line);
                    if found {
                        return Ok(());
                    }
                }
                // stderr closed: memtrace exited without tracing.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        Err(self.failure("did not start tracing"))
    }

    /// Stops it as Ctrl-C would (it then writes its report).
    pub fn interrupt(&self) {
        self.child.signal(libc::SIGINT);
    }

    /// Waits for it to end (by itself, or after [`Recorder::interrupt`]) and returns its report.
    pub fn finish(mut self) -> Result<Report, Error> {
        let status = self.child.reap()?;
        let json = self
            .stdout
            .take()
            .map(|t| t.join())
            .transpose()
            .map_err(|_| {
                Error::io(
                    "reading memtrace's report",
                    std::io::ErrorKind::Other.into(),
                )
            })?
            .transpose()
            .map_err(|e| Error::io("reading memtrace's report", e))?
            .unwrap_or_default();
        self.stderr_seen.extend(self.stderr.try_iter());
        if !status.success() {
            return Err(self.failure(&format!("failed ({status})")));
        }
        serde_json::from_slice(&json)
            .map_err(|e| Error::io("memtrace record's JSON report", e.into()))
    }

    /// An error that quotes memtrace's own last words.
    fn failure(&mut self, what: &str) -> Error {
        self.stderr_seen.extend(self.stderr.try_iter());
        let said: Vec<&str> = self
            .stderr_seen
            .iter()
            .rev()
            .filter(|l| l.starts_with("memtrace"))
            .take(2)
            .map(String::as_str)
            .collect();
        Error::io(
            format!("memtrace record {what}"),
            std::io::Error::other(if said.is_empty() {
                "it said nothing".to_string()
            } else {
                said.into_iter().rev().collect::<Vec<_>>().join("; ")
            }),
        )
    }
}
