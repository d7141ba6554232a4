//! Workloads for the figures whose meaning the kernel's own accounting can check: transparent
//! huge page faults (against `thp_fault_alloc`), a sequential read of a cold file through a
//! mapping (its faults wait for readahead I/O, yet most count as minor: against the thread's
//! time asleep, by schedstat), and fragmented free memory (so high-order allocations must compact).
use std::{os::fd::AsRawFd, path::Path};

use super::{
    FaultCounters, PAGE,
    mapping::Mapping,
    thread_time::{ThreadClock, ThreadTime},
    vmstat,
};

/// Size of a transparent huge page on x86-64.
pub const HUGE: usize = 2 << 20;

/// What the THP phase did, by the kernel's counters.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ThpOutcome {
    pub pid: u32,
    /// 2 MiB chunks touched (one write each).
    pub chunks: u64,
    /// minflt/majflt over the phase.
    pub faults: FaultCounters,
    /// `/proc/vmstat` thp_fault_alloc over the phase (machine-wide).
    pub thp_fault_alloc: u64,
    /// The thread's time over the writes.
    pub time: ThreadTime,
}

/// Touches `mib` (at least 2) of `MADV_HUGEPAGE` memory, one write per 2 MiB: with THP on
/// ("madvise" or "always") each write is one huge page fault.
pub fn thp(mib: usize) -> std::io::Result<ThpOutcome> {
    let chunks = (mib << 20) / HUGE;
    // One extra huge page of room to start on a 2 MiB boundary.
    let map = Mapping::new((chunks + 1) * HUGE, None)?;
    let base = map.as_ptr() as usize;
    let aligned = base.next_multiple_of(HUGE);
    map.advise_range(aligned - base, chunks * HUGE, libc::MADV_HUGEPAGE)?;
    let alloc_before = vmstat("thp_fault_alloc")?;
    let before = FaultCounters::read("self")?;
    let clock = ThreadClock::now()?;
    for chunk in 0..chunks {
        // SAFETY: inside the mapping, which is writable; volatile keeps every write.
        unsafe { ((aligned + chunk * HUGE) as *mut u8).write_volatile(1) };
    }
    let time = ThreadClock::now()?.since(&clock);
    let faults = FaultCounters::read("self")?.since(&before);
    Ok(ThpOutcome {
        pid: std::process::id(),
        chunks: chunks as u64,
        faults,
        thp_fault_alloc: vmstat("thp_fault_alloc")? - alloc_before,
        time,
    })
}

/// What the sequential read did, by the kernel's counters and the scheduler's accounting.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SequentialOutcome {
    pub pid: u32,
    pub pages: u64,
    pub faults: FaultCounters,
    /// The thread's time over the reads: it sleeps only in faults there, so `asleep_ns` is
    /// the time its faults were blocked.
    pub time: ThreadTime,
}

/// Writes a file of `mib`, drops its page cache, then reads one byte per page through a
/// `MADV_SEQUENTIAL` mapping: readahead brings pages in ahead of the reads, and a read that
/// finds its page still under I/O waits for it in a fault the kernel counts as minor.
pub fn sequential(dir: &Path, mib: usize) -> std::io::Result<SequentialOutcome> {
    let path = dir.join(format!(".memtrace-sequential-{}", std::process::id()));
    let result = (|| {
        let file = super::cold_file(&path, mib)?;
        let len = mib << 20;
        let map = Mapping::new(len, Some(file.as_raw_fd()))?;
        map.advise(libc::MADV_SEQUENTIAL)?;
        let before = FaultCounters::read("self")?;
        let clock = ThreadClock::now()?;
        map.touch_pages(false);
        let time = ThreadClock::now()?.since(&clock);
        let faults = FaultCounters::read("self")?.since(&before);
        Ok(SequentialOutcome {
            pid: std::process::id(),
            pages: (len / PAGE) as u64,
            faults,
            time,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Touches `mib` of anonymous memory in 4 KiB pages, then frees every other page: the freed
/// half is scattered between pages still in use, so no 2 MiB block of it is free. Returns the
/// mapping, which keeps the other half until dropped.
pub fn fragment(mib: usize) -> std::io::Result<Mapping> {
    let map = Mapping::anonymous(mib << 20)?;
    map.touch_pages(true);
    for offset in (PAGE..mib << 20).step_by(2 * PAGE) {
        map.advise_range(offset, PAGE, libc::MADV_DONTNEED)?;
    }
    Ok(map)
}
