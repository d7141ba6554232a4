//! Built-in workloads with known effects, run by the demo and the tests inside a sandbox.
//! Each one reports the kernel's own counters for itself, to compare memtrace's figures with.
pub mod bench;
pub mod faults;
pub mod files;
pub mod leak;
pub mod mapping;
pub mod oom;
pub mod pages;
pub mod pipe;
pub mod reuse;
pub mod thread_time;

use std::io::BufRead;

/// Page size the workloads assume (and check at run time).
pub const PAGE: usize = 4096;

/// minflt and majflt of a process, from `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FaultCounters {
    pub minflt: u64,
    pub majflt: u64,
}

impl FaultCounters {
    /// Reads the counters of `pid` (`self` for the calling process).
    pub fn read(pid: &str) -> std::io::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        parse_stat(&stat)
            .ok_or_else(|| std::io::Error::other(format!("unexpected /proc/{pid}/stat")))
    }

    /// `self - earlier`, per counter.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            minflt: self.minflt.saturating_sub(earlier.minflt),
            majflt: self.majflt.saturating_sub(earlier.majflt),
        }
    }
}

/// Parses minflt (field 10) and majflt (field 12) of a stat line; `comm` may hold spaces and
/// parentheses, so fields are counted after its closing parenthesis.
pub fn parse_stat(stat: &str) -> Option<FaultCounters> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state): field N is at index N - 3.
    Some(FaultCounters {
        minflt: fields.get(7)?.parse().ok()?,
        majflt: fields.get(9)?.parse().ok()?,
    })
}

/// Creates the file `path` with `mib` MiB of data, writes it to disk and drops it from the page
/// cache: reading it back needs I/O. The caller removes the file.
pub fn cold_file(path: &std::path::Path, mib: usize) -> std::io::Result<std::fs::File> {
    use std::{io::Write, os::fd::AsRawFd};
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let chunk = vec![0x5a_u8; 1 << 20];
    for _ in 0..mib {
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    let len = (mib << 20) as i64;
    // SAFETY: plain syscall on our own fd.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, len, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(file)
}

/// Names the calling thread (its `comm`), so reports show the workload apart from memtrace.
pub fn set_comm(name: &str) {
    let mut bytes = [0u8; 16];
    let len = name.len().min(15);
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, bytes.as_ptr()) };
}

/// Blocks until a line arrives on stdin: lets a tracer attach before the workload starts.
pub fn wait_for_go() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

use crate::collect::procfs::parse_vmstat;

/// Reads one `/proc/vmstat` counter.
pub fn vmstat(key: &str) -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/vmstat")?;
    parse_vmstat(&text, key)
        .ok_or_else(|| std::io::Error::other(format!("no {key} in /proc/vmstat")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_comm() {
        let line = "4242 (a (b) c) R 1 4242 4242 0 -1 4194304 1234 0 56 0 1 2 0 0 20 0 1 0";
        assert_eq!(
            parse_stat(line),
            Some(FaultCounters {
                minflt: 1234,
                majflt: 56
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn counters_of_this_process_are_readable() {
        let counters = FaultCounters::read("self").expect("stat");
        assert!(counters.minflt > 0);
    }
}
