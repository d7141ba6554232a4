//! The kernel's own account of an OOM kill from /dev/kmsg, joined by victim pid as a
//! cross-check: `oom-kill:constraint=...,oom_memcg=...,task_memcg=...,task=...,pid=...`.
//! memtrace never depends on it (kmsg may be unreadable, rate-limited, or already rotated).
use std::{
    fs::File,
    io::{ErrorKind, Read},
    os::unix::fs::OpenOptionsExt,
};

use crate::samples::oom::KmsgOom;

/// Parses the message part of an `oom-kill:` line; `None` for any other line.
pub fn parse_oom_line(message: &str) -> Option<KmsgOom> {
    let fields = message.trim().strip_prefix("oom-kill:")?;
    let mut found = KmsgOom::default();
    for field in fields.split(',') {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "constraint" => found.constraint = value.to_string(),
            "oom_memcg" => found.oom_memcg = Some(value.to_string()),
            "task_memcg" => found.task_memcg = Some(value.to_string()),
            "task" => found.task = value.to_string(),
            "pid" => found.pid = value.parse().ok()?,
            _ => {}
        }
    }
    (found.pid != 0).then_some(found)
}

/// The message of a /dev/kmsg record: `prio,seq,usec,flags;message`.
pub fn record_message(record: &str) -> &str {
    record
        .split_once(';')
        .map_or(record, |(_, message)| message)
}

/// /dev/kmsg, read from the moment memtrace started; `None` where it is not readable.
pub struct KmsgReader {
    file: File,
}

impl KmsgReader {
    /// Opens /dev/kmsg positioned after the records already logged.
    pub fn open() -> Option<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(|e| log::debug!("/dev/kmsg: {e}; no kernel cross-check of OOM kills"))
            .ok()?;
        use std::os::fd::AsRawFd;
        // SAFETY: plain lseek on our own fd; SEEK_END on /dev/kmsg skips the existing records.
        unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
        Some(Self { file })
    }

    /// Every `oom-kill:` line logged since the last call.
    pub fn read_oom_lines(&mut self) -> Vec<KmsgOom> {
        let mut found = Vec::new();
        // One read returns one record; records are at most a few KiB.
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let record = String::from_utf8_lossy(&buf[..n]);
                    found.extend(parse_oom_line(record_message(&record)));
                }
                // EPIPE: records were overwritten before we read them; carry on with the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("reading /dev/kmsg: {e}");
                    break;
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernels_oom_kill_line() {
        let record = "6,2041,77180123,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),\
                      cpuset=/,mems_allowed=0,oom_memcg=/memtrace-sandbox-9-0,\
                      task_memcg=/memtrace-sandbox-9-0,task=mt-workload,pid=4242,uid=0\n";
        let found = parse_oom_line(record_message(record)).expect("an oom-kill line");
        assert_eq!(found.constraint, "CONSTRAINT_MEMCG");
        assert_eq!(found.oom_memcg.as_deref(), Some("/memtrace-sandbox-9-0"));
        assert_eq!(found.task_memcg.as_deref(), Some("/memtrace-sandbox-9-0"));
        assert_eq!((found.task.as_str(), found.pid), ("mt-workload", 4242));
    }

    #[test]
    fn global_lines_and_other_lines() {
        let global = "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,\
                      mems_allowed=0,global_oom,task_memcg=/,task=big,pid=7,uid=1000";
        let found = parse_oom_line(global).expect("line");
        assert_eq!(
            (found.constraint.as_str(), found.oom_memcg),
            ("CONSTRAINT_NONE", None)
        );
        assert_eq!(
            parse_oom_line("Out of memory: Killed process 7 (big)"),
            None
        );
        assert_eq!(parse_oom_line("oom-kill:constraint=X,pid=notanumber"), None);
        assert_eq!(record_message("no separator"), "no separator");
    }
}
