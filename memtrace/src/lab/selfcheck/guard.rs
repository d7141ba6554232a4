//! What the selfcheck changes on the machine, and how it is undone on every path: kernel
//! settings restored on drop (so also on an error or a panic), children killed and reaped on
//! drop, and SIGINT, SIGTERM and SIGHUP turned into a clean stop instead of an exit that would
//! leave `kernel.task_delayacct` switched on.
use std::{
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command},
    sync::{
        Mutex,
        atomic::{AtomicI32, Ordering},
    },
};

use crate::error::Error;

/// A kernel setting (a file under /proc/sys) changed for the run; the old value is written
/// back on drop.
#[derive(Debug)]
pub struct Sysctl {
    path: &'static str,
    original: String,
}

impl Sysctl {
    /// Reads the setting.
    pub fn read(path: &'static str) -> Result<String, Error> {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| Error::io(format!("reading {path}"), e))
    }

    /// Sets `path` to `value`, remembering what it was.
    pub fn set(path: &'static str, value: &str) -> Result<Self, Error> {
        let original = Self::read(path)?;
        std::fs::write(path, value)
            .map_err(|e| Error::io(format!("writing {value} to {path}"), e))?;
        Ok(Self { path, original })
    }

    /// As [`Sysctl::set`], or `None` when this kernel has no such setting.
    pub fn set_if_present(path: &'static str, value: &str) -> Result<Option<Self>, Error> {
        if !Path::new(path).exists() {
            return Ok(None);
        }
        Self::set(path, value).map(Some)
    }

    /// The value it had before.
    pub fn original(&self) -> &str {
        &self.original
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(self.path, &self.original) {
            progress!(
                "memtrace selfcheck: could not restore {} to {}: {e}",
                self.path,
                self.original
            );
        }
    }
}

/// A file the run created, deleted on drop.
pub struct TempFile<'a>(pub &'a Path);

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// How a child is stopped when the selfcheck is interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A workload: SIGKILL.
    Kill,
    /// `memtrace record`: SIGINT, so it detaches and exits.
    Interrupt,
}

/// Children that a signal must stop, by pid. A pid is removed before its child is reaped, so
/// that a signal never reaches a process that reused it.
static CHILDREN: Mutex<Vec<(u32, Stop)>> = Mutex::new(Vec::new());

/// The signal that interrupted the run, 0 if none.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// The signal that interrupted the run, if one did.
pub fn interrupted() -> Option<i32> {
    let signal = INTERRUPTED.load(Ordering::Relaxed);
    (signal != 0).then_some(signal)
}

/// The signals that stop the run.
fn stopping_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and the threads it starts from now on)
/// and starts a thread that takes them: it notes the signal and stops every registered child,
/// which ends whatever the run was waiting for, and the run then unwinds through its guards.
/// Children inherit the mask; [`Guarded::spawn`] unblocks the signals in them again. Call
/// first, before any other thread exists.
pub fn take_signals() -> Result<(), Error> {
    let set = stopping_signals();
    // SAFETY: a valid set; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(Error::io(
            "blocking signals",
            std::io::Error::from_raw_os_error(rc),
        ));
    }
    std::thread::Builder::new()
        .name("selfcheck-signals".into())
        .spawn(move || {
            loop {
                let mut signal = 0;
                // SAFETY: waits for one of the blocked signals of `set`.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    return;
                }
                INTERRUPTED.store(signal, Ordering::Relaxed);
                stop_children();
            }
        })
        .map_err(|e| Error::io("starting the signal thread", e))?;
    Ok(())
}

fn stop_children() {
    let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    for &(pid, stop) in children.iter() {
        let signal = match stop {
            Stop::Kill => libc::SIGKILL,
            Stop::Interrupt => libc::SIGINT,
        };
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }
}

/// A child process that is stopped on interruption and killed and reaped on drop.
pub struct Guarded {
    child: Child,
    pid: u32,
    reaped: bool,
}

impl Guarded {
    /// Spawns `command`, registered to be stopped as `stop` says.
    pub fn spawn(command: &mut Command, stop: Stop, what: &str) -> Result<Self, Error> {
        // SAFETY: between fork and exec, only sigprocmask (async-signal-safe) on a local set.
        unsafe {
            command.pre_exec(|| {
                let set = stopping_signals();
                if libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        // Under the lock: a signal that arrives now finds the child registered.
        let child = command
            .spawn()
            .map_err(|e| Error::io(format!("starting {what}"), e))?;
        let pid = child.id();
        children.push((pid, stop));
        drop(children);
        if interrupted().is_some() {
            // The signal came before the registration: stop this one too.
            stop_children();
        }
        Ok(Self {
            child,
            pid,
            reaped: false,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its stdin, if piped and not taken yet.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.child.stdin.as_mut()
    }

    /// Takes its stdout, if piped.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Takes its stderr, if piped.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// Sends a signal (it is not reaped yet, so the pid is still its).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
    }

    /// Waits until it has exited, without reaping it: its /proc entry and its taskstats stay
    /// readable until [`Guarded::reap`].
    pub fn wait_exited(&self) -> Result<(), Error> {
        // SAFETY: siginfo_t is plain data, filled by waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waitid on our own child, WNOWAIT leaves it a zombie.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    self.pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if rc == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::io(format!("waiting for process {}", self.pid), e));
            }
        }
    }

    /// Reaps it and returns its exit status.
    pub fn reap(&mut self) -> Result<std::process::ExitStatus, Error> {
        self.unregister();
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io(format!("waiting for process {}", self.pid), e))?;
        self.reaped = true;
        Ok(status)
    }

    fn unregister(&self) {
        let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        children.retain(|&(pid, _)| pid != self.pid);
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if !self.reaped {
            self.unregister();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
