//! The kernel's own line about an OOM victim, read from /dev/kmsg:
//! `Memory cgroup out of memory: Killed process 4242 (mt-workload) total-vm:205824kB,
//! anon-rss:48896kB, file-rss:2816kB, shmem-rss:0kB, UID:0 pgtables:180kB oom_score_adj:0`
//! (`__oom_kill_process()` in mm/oom_kill.c prints it right after the SIGKILL).
use std::{
    fs::File,
    io::{ErrorKind, Read},
    os::fd::AsRawFd,
    os::unix::fs::OpenOptionsExt,
    time::{Duration, Instant},
};

use crate::collect::kmsg::record_message;

/// The fields of a `Killed process` line.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KilledProcess {
    pub pid: u32,
    pub comm: String,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub pgtables_kb: u64,
    pub oom_score_adj: i32,
}

/// Parses the message of a `Killed process` line; `None` for any other line.
pub fn parse_killed(message: &str) -> Option<KilledProcess> {
    let rest = &message[message.find("Killed process ")? + "Killed process ".len()..];
    let (pid, rest) = rest.split_once(" (")?;
    // The comm may hold spaces and parentheses: it ends where the fields begin.
    let end = rest.rfind(") total-vm:")?;
    let mut killed = KilledProcess {
        pid: pid.trim().parse().ok()?,
        comm: rest[..end].to_string(),
        ..KilledProcess::default()
    };
    for field in rest[end + 2..].split([' ', ',']).filter(|f| !f.is_empty()) {
        let Some((key, value)) = field.split_once(':') else {
            continue;
        };
        let kb = || value.trim().strip_suffix("kB")?.parse::<u64>().ok();
        match key {
            "total-vm" => killed.total_vm_kb = kb()?,
            "anon-rss" => killed.anon_rss_kb = kb()?,
            "file-rss" => killed.file_rss_kb = kb()?,
            "shmem-rss" => killed.shmem_rss_kb = kb()?,
            "pgtables" => killed.pgtables_kb = kb()?,
            "oom_score_adj" => killed.oom_score_adj = value.trim().parse().ok()?,
            _ => {}
        }
    }
    Some(killed)
}

/// /dev/kmsg from the moment it was opened on.
pub struct KmsgTail {
    file: File,
}

impl KmsgTail {
    /// Opens /dev/kmsg after the records already logged.
    pub fn open() -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(|e| format!("/dev/kmsg: {e}"))?;
        // SAFETY: lseek on our own fd; SEEK_END on /dev/kmsg skips the existing records.
        unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
        Ok(Self { file })
    }

    /// The `Killed process` line of `pid`, waiting up to `timeout` for it (the kernel prints
    /// it after the SIGKILL, so the victim's exit can come first).
    pub fn find_killed(&mut self, pid: u32, timeout: Duration) -> Result<KilledProcess, String> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(n) => {
                    let record = String::from_utf8_lossy(&buf[..n]);
                    if let Some(killed) = parse_killed(record_message(&record))
                        && killed.pid == pid
                    {
                        return Ok(killed);
                    }
                    continue;
                }
                // Records overwritten before they were read: carry on with the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("reading /dev/kmsg: {e}")),
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(format!(
                    "no \"Killed process {pid}\" line in the kernel log"
                ));
            };
            let mut poll = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd that outlives the call.
            unsafe { libc::poll(&mut poll, 1, left.as_millis().max(1) as libc::c_int) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memcg_kill_line() {
        let line = "Memory cgroup out of memory: Killed process 4242 (mt-workload) \
                    total-vm:205824kB, anon-rss:48896kB, file-rss:2816kB, shmem-rss:4kB, UID:0 \
                    pgtables:180kB oom_score_adj:-17";
        assert_eq!(
            parse_killed(line),
            Some(KilledProcess {
                pid: 4242,
                comm: "mt-workload".into(),
                total_vm_kb: 205_824,
                anon_rss_kb: 48_896,
                file_rss_kb: 2816,
                shmem_rss_kb: 4,
                pgtables_kb: 180,
                oom_score_adj: -17,
            })
        );
    }

    #[test]
    fn a_comm_with_spaces_and_parentheses() {
        let line = "Out of memory: Killed process 7 (a (b) c) total-vm:1kB, anon-rss:2kB, \
                    file-rss:3kB, shmem-rss:0kB, UID:1000 pgtables:4kB oom_score_adj:0";
        let killed = parse_killed(line).expect("parses");
        assert_eq!((killed.pid, killed.comm.as_str()), (7, "a (b) c"));
        assert_eq!(killed.anon_rss_kb, 2);
    }

    #[test]
    fn other_lines_are_not_kills() {
        assert_eq!(
            parse_killed("oom-kill:constraint=CONSTRAINT_MEMCG,pid=1"),
            None
        );
        assert_eq!(parse_killed("Killed process x (a) total-vm:1kB"), None);
        assert_eq!(parse_killed("Killed process 1 (a) total-vm:lots"), None);
        assert_eq!(
            parse_killed("oom_reaper: reaped process 1 (a), now anon-rss:0kB"),
            None
        );
    }

    #[test]
    fn a_kmsg_record_is_parsed_by_its_message() {
        let record = "3,1234,5678,-;Memory cgroup out of memory: Killed process 9 (hog) \
                      total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB, UID:0 \
                      pgtables:4kB oom_score_adj:0";
        assert_eq!(parse_killed(record_message(record)).map(|k| k.pid), Some(9));
    }
}
