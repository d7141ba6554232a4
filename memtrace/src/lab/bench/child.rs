//! Long-running child processes (tracers): started, waited on until they say they are ready,
//! stopped with SIGINT like a user's Ctrl-C, and reaped with their resource usage.
use std::{
    io::{BufRead, BufReader, Read},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::Error;

/// Where a child announces that it is ready, and with what words.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    /// True for stderr, false for stdout.
    pub on_stderr: bool,
    /// A line containing this means ready.
    pub marker: &'static str,
}

/// A child that runs until stopped.
pub struct Daemon {
    child: Child,
    reaped: bool,
    /// Drains the announcing stream to the end, so that the child never blocks on a full pipe.
    output: Option<JoinHandle<String>>,
    /// Time from spawning to the ready line.
    pub startup: Duration,
}

/// How a stopped child used the machine, from wait4(2).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub cpu_s: f64,
    /// Peak resident memory over the whole life, in KiB.
    pub max_rss_kib: u64,
    /// Exited with status 0, or by the SIGINT it was sent (perf re-raises it after its report).
    pub clean_stop: bool,
}

impl Daemon {
    /// Spawns `command` and waits up to `timeout` for its ready line; the other stream is
    /// discarded. A child that exits or stays silent is killed and its output returned in the
    /// error.
    pub fn start(mut command: Command, ready: Ready, timeout: Duration) -> Result<Self, Error> {
        let (out, err) = if ready.on_stderr {
            (Stdio::null(), Stdio::piped())
        } else {
            (Stdio::piped(), Stdio::null())
        };
        let what = format!("{command:?}");
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io(format!("starting {what}"), e))?;
        let stream: Box<dyn Read + Send> = match (child.stdout.take(), child.stderr.take()) {
            (Some(s), _) if !ready.on_stderr => Box::new(s),
            (_, Some(s)) => Box::new(s),
            _ => return Err(Error::io(&what, std::io::ErrorKind::BrokenPipe.into())),
        };
        let (tx, rx) = mpsc::channel();
        let output = std::thread::spawn(move || read_until_ready(stream, ready.marker, &tx));
        let mut daemon = Self {
            child,
            reaped: false,
            output: Some(output),
            startup: Duration::ZERO,
        };
        match rx.recv_timeout(timeout) {
            Ok(()) => {
                daemon.startup = started.elapsed();
                Ok(daemon)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(daemon.fail(
                &what,
                "said nothing ready in time",
                std::io::ErrorKind::TimedOut,
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(daemon.fail(
                &what,
                "ended before it was ready",
                std::io::ErrorKind::UnexpectedEof,
            )),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT and waits up to `timeout` for the exit (then SIGKILL); returns the usage
    /// and everything the child wrote on its announcing stream.
    pub fn stop(mut self, timeout: Duration) -> Result<(Usage, String), Error> {
        // SAFETY: signals our own child, not yet reaped, so the pid is still ours.
        unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGINT) };
        let usage = self.reap(timeout)?;
        let output = self.output.take().map(JoinHandle::join);
        Ok((usage, output.and_then(Result::ok).unwrap_or_default()))
    }

    /// Kills the child and builds the error of a failed start, with what it said.
    fn fail(&mut self, what: &str, why: &str, kind: std::io::ErrorKind) -> Error {
        let _ = self.child.kill();
        let _ = self.reap(Duration::from_secs(5));
        let said = self.output.take().map(JoinHandle::join);
        let said = said.and_then(Result::ok).unwrap_or_default();
        let said = if said.trim().is_empty() {
            "(it printed nothing)"
        } else {
            said.trim()
        };
        Error::io(format!("{what} {why}"), std::io::Error::new(kind, said))
    }

    /// Waits for the exit (SIGKILL after `timeout`) and collects the child's rusage.
    fn reap(&mut self, timeout: Duration) -> Result<Usage, Error> {
        let pid = self.pid() as libc::pid_t;
        if !exits_within(pid, timeout) {
            let _ = self.child.kill();
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of the struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child; both out-pointers are valid.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc != pid {
            return Err(Error::io(
                format!("waiting for pid {pid}"),
                std::io::Error::last_os_error(),
            ));
        }
        self.reaped = true;
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok(Usage {
            cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            clean_stop: (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
                || (libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGINT),
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A benchmark that failed half-way must not leave a tracer running.
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads lines, signalling once the marker shows up; returns all the text at end of stream.
fn read_until_ready(stream: impl Read, marker: &str, ready: &mpsc::Sender<()>) -> String {
    let mut text = String::new();
    let mut seen = false;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if !seen && line.contains(marker) {
            seen = true;
            let _ = ready.send(());
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// True once `pid` has exited (not yet reaped), false after `timeout`; watched through a pidfd,
/// so no polling loop.
fn exits_within(pid: libc::pid_t, timeout: Duration) -> bool {
    // SAFETY: plain syscall; a non-negative result is a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: the kernel just handed us this fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll, 1, ms) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_marker_and_the_rest_of_the_text() {
        let (tx, rx) = mpsc::channel();
        let text = read_until_ready(&b"a\nnow ready\nb\n"[..], "ready", &tx);
        assert_eq!(text, "a\nnow ready\nb\n");
        assert_eq!(rx.try_recv(), Ok(()));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_shell_daemon_starts_and_stops() {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "trap 'echo bye >&2; exit 0' INT; echo up >&2; while :; do sleep 0.05; done",
        ]);
        let ready = Ready {
            on_stderr: true,
            marker: "up",
        };
        let daemon = Daemon::start(command, ready, Duration::from_secs(5)).expect("start");
        let (usage, text) = daemon.stop(Duration::from_secs(5)).expect("stop");
        assert!(usage.clean_stop, "{text}");
        assert!(text.contains("bye"), "{text}");
    }

    #[test]
    fn a_silent_exit_is_an_error() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo oops >&2; exit 3"]);
        let ready = Ready {
            on_stderr: true,
            marker: "up",
        };
        let err = Daemon::start(command, ready, Duration::from_secs(5))
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("oops"), "{err}");
    }
}
