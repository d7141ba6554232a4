//! A workload with known page-fault counts: file-backed major faults, anonymous minor faults,
//! and swap-ins (when run in a memory cgroup smaller than `swap_mib`, with swap on).
use std::{
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use super::{FaultCounters, PAGE, mapping::Mapping};

/// Sizes of each phase; 0 skips a phase.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FaultPlan {
    /// File read through a random-access mapping after its page cache is dropped.
    pub file_mib: usize,
    /// Fresh anonymous memory touched once per page.
    pub anon_mib: usize,
    /// Anonymous memory written, then read back (swap-ins when it outgrows the memcg).
    pub swap_mib: usize,
    /// Where the temporary file goes (must not be tmpfs, or there is no I/O).
    pub dir: PathBuf,
    /// Idle time before the first phase.
    pub pause_ms: u64,
}

/// The kernel's counters for the workload, per phase and overall.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FaultOutcome {
    pub pid: u32,
    /// Pages touched in each phase.
    pub file_pages: u64,
    pub anon_pages: u64,
    pub swap_pages: u64,
    /// Deltas of /proc/self/stat over each phase and over the whole run.
    pub file: FaultCounters,
    pub anon: FaultCounters,
    pub swap: FaultCounters,
    pub total: FaultCounters,
}

/// Runs the plan and returns the kernel's counts.
pub fn run(plan: &FaultPlan) -> std::io::Result<FaultOutcome> {
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize != PAGE {
        return Err(std::io::Error::other(
            "the fault workload assumes 4 KiB pages",
        ));
    }
    let mut outcome = FaultOutcome {
        pid: std::process::id(),
        ..FaultOutcome::default()
    };
    std::thread::sleep(std::time::Duration::from_millis(plan.pause_ms));
    let start = FaultCounters::read("self")?;
    if plan.file_mib > 0 {
        let before = FaultCounters::read("self")?;
        outcome.file_pages = file_phase(&plan.dir, plan.file_mib)?;
        outcome.file = FaultCounters::read("self")?.since(&before);
    }
    if plan.anon_mib > 0 {
        let before = FaultCounters::read("self")?;
        outcome.anon_pages = touch_anon(plan.anon_mib, false)?;
        outcome.anon = FaultCounters::read("self")?.since(&before);
    }
    if plan.swap_mib > 0 {
        let before = FaultCounters::read("self")?;
        outcome.swap_pages = touch_anon(plan.swap_mib, true)?;
        outcome.swap = FaultCounters::read("self")?.since(&before);
    }
    outcome.total = FaultCounters::read("self")?.since(&start);
    Ok(outcome)
}

/// Writes a file, drops its page cache, then reads one byte per page through a random-access
/// mapping: every page is a page-cache miss, a major fault.
fn file_phase(dir: &Path, mib: usize) -> std::io::Result<u64> {
    let path = dir.join(format!(".memtrace-workload-{}", std::process::id()));
    let result = (|| {
        let file = super::cold_file(&path, mib)?;
        let len = mib << 20;
        let map = Mapping::new(len, Some(file.as_raw_fd()))?;
        map.advise(libc::MADV_RANDOM)?;
        map.touch_pages(false);
        Ok((len / PAGE) as u64)
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Touches `mib` of fresh anonymous memory; with `read_back`, writes it all first and then
/// reads it all again, which brings back from swap whatever reclaim pushed out.
fn touch_anon(mib: usize, read_back: bool) -> std::io::Result<u64> {
    let len = mib << 20;
    let map = Mapping::anonymous(len)?;
    map.touch_pages(true);
    if read_back {
        map.touch_pages(false);
    }
    Ok((len / PAGE) as u64)
}
