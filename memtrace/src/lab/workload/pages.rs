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
    /// Times the thread moved to another CPU over the reads (`se.nr_migrations` of
    /// /proc/thread-self/sched; `None` where the kernel lacks the file, CONFIG_SCHED_DEBUG).
    #[serde(default)]
    pub migrations: Option<u64>,
}

/// Writes a file of `mib`, drops its page cache, then reads one byte per page through a
/// `MADV_SEQUENTIAL` mapping: readahead brings pages in ahead of the reads, and a read that
/// finds its page still under I/O waits for it in a fault the kernel counts as minor. With
/// `hop`, another thread moves the reader to the next CPU whenever it finds it asleep, so that
/// faults that sleep on one CPU wake on another.
pub fn sequential(dir: &Path, mib: usize, hop: bool) -> std::io::Result<SequentialOutcome> {
    let path = dir.join(format!(".memtrace-sequential-{}", std::process::id()));
    let result = (|| {
        let file = super::cold_file(&path, mib)?;
        let len = mib << 20;
        let map = Mapping::new(len, Some(file.as_raw_fd()))?;
        map.advise(libc::MADV_SEQUENTIAL)?;
        let before = FaultCounters::read("self")?;
        let moved = thread_migrations();
        let hopper = hop.then(Hopper::start).transpose()?;
        let clock = ThreadClock::now()?;
        map.touch_pages(false);
        let time = ThreadClock::now()?.since(&clock);
        drop(hopper);
        let migrations = thread_migrations().zip(moved).map(|(now, then)| now - then);
        let faults = FaultCounters::read("self")?.since(&before);
        Ok(SequentialOutcome {
            pid: std::process::id(),
            pages: (len / PAGE) as u64,
            faults,
            time,
            migrations,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// The calling thread's `se.nr_migrations`, where the kernel has /proc/thread-self/sched.
fn thread_migrations() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    parse_migrations(&text)
}

/// The state letter of a /proc/PID/stat line (after the parenthesised command).
fn task_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn parse_migrations(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == "se.nr_migrations").then(|| value.trim().parse().ok())?
    })
}

/// A thread that moves the thread that started it to the next CPU whenever it finds it asleep,
/// until dropped (which gives it back every CPU it had). A sleeping thread is only given a new
/// CPU mask, so it wakes on the other CPU; moving a running thread would also be accounted in
/// ways that blur the thread's own clocks, which the tests compare with.
struct Hopper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    tid: libc::pid_t,
    allowed: libc::cpu_set_t,
}

impl Hopper {
    fn start() -> std::io::Result<Self> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        // SAFETY: cpu_set_t is a plain bitmask, valid all zero.
        let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid set, passed with its size.
        if unsafe { libc::sched_getaffinity(tid, size_of::<libc::cpu_set_t>(), &mut allowed) } != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: reads one bit of a valid set; `cpu` is below CPU_SETSIZE.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &allowed) })
            .collect();
        if cpus.len() < 2 {
            return Err(std::io::Error::other(
                "moving between CPUs needs two of them",
            ));
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let stat = format!("/proc/self/task/{tid}/stat");
        let thread = std::thread::spawn(move || {
            let mut next = cpus.iter().cycle();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let asleep = std::fs::read_to_string(&stat)
                    .ok()
                    .and_then(|text| task_state(&text))
                    .is_some_and(|state| state == 'D' || state == 'S');
                if asleep && let Some(&cpu) = next.next() {
                    // SAFETY: a zeroed set with one bit, passed by reference with its size.
                    unsafe {
                        let mut one: libc::cpu_set_t = std::mem::zeroed();
                        libc::CPU_SET(cpu, &mut one);
                        libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &one);
                    }
                }
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
            tid,
            allowed,
        })
    }
}

impl Drop for Hopper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // SAFETY: the set read at the start, passed with its size.
        unsafe { libc::sched_setaffinity(self.tid, size_of::<libc::cpu_set_t>(), &self.allowed) };
    }
}

/// Threads spinning without touching memory, until dropped: contention for the CPUs, so that a
/// faulting thread waits for one and wakes on whichever is free.
pub struct Busy {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    pub fn start(count: usize) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Touches `mib` of anonymous memory in 4 KiB pages, then frees the pages whose physical frame
/// number is odd: each freed page's buddy stays in use, so no freed page can merge into a
/// larger block while the mapping lives (freeing every other *virtual* page does not ensure
/// that: the allocator hands out physical pages in no particular order). Without the frame
/// numbers (/proc/self/pagemap shows them to root only) every other virtual page is freed.
/// Returns the mapping, which keeps the other half until dropped.
pub fn fragment(mib: usize) -> std::io::Result<Mapping> {
    let map = Mapping::anonymous(mib << 20)?;
    map.touch_pages(true);
    let pages = (mib << 20) / PAGE;
    let frames = frame_numbers(map.as_ptr() as usize, pages).unwrap_or_default();
    for page in 0..pages {
        let free = match frames.get(page) {
            Some(&Some(frame)) => frame % 2 == 1,
            _ if frames.iter().any(Option::is_some) => false,
            _ => page % 2 == 1,
        };
        if free {
            map.advise_range(page * PAGE, PAGE, libc::MADV_DONTNEED)?;
        }
    }
    Ok(map)
}

/// The physical frame number of each of `pages` pages from `addr`, from /proc/self/pagemap
/// (`None` for a page not present, or when the kernel hides the numbers: it shows 0).
fn frame_numbers(addr: usize, pages: usize) -> std::io::Result<Vec<Option<u64>>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open("/proc/self/pagemap")?;
    let mut bytes = vec![0u8; pages * 8];
    file.read_exact_at(&mut bytes, (addr / PAGE * 8) as u64)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|entry| parse_pagemap_entry(u64::from_ne_bytes(entry.try_into().unwrap_or_default())))
        .collect())
}

/// A pagemap entry's frame number: bit 63 says present, bits 0–54 hold the number.
fn parse_pagemap_entry(entry: u64) -> Option<u64> {
    let frame = entry & ((1 << 55) - 1);
    (entry >> 63 == 1 && frame != 0).then_some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_come_from_the_sched_file() {
        let text = "mt-workload (17283, #threads: 1)\n\
            -------------------------------------------------------------------\n\
            se.exec_start                                :      12345678.901234\n\
            se.nr_migrations                             :                   17\n\
            nr_switches                                  :                  120\n";
        assert_eq!(parse_migrations(text), Some(17));
        assert_eq!(parse_migrations("nr_switches : 3\n"), None);
    }

    #[test]
    fn pagemap_entries_give_present_pages_frame_numbers() {
        assert_eq!(parse_pagemap_entry((1 << 63) | 0x1234), Some(0x1234));
        // Present with the number hidden (not root), not present, swapped.
        assert_eq!(parse_pagemap_entry(1 << 63), None);
        assert_eq!(parse_pagemap_entry(0x1234), None);
        assert_eq!(parse_pagemap_entry((1 << 62) | 0x55), None);
    }

    #[test]
    fn the_state_follows_the_last_parenthesis() {
        assert_eq!(task_state("412 (a) b) D 1 412 412 0"), Some('D'));
        assert_eq!(task_state("412 (reader) R 1"), Some('R'));
        assert_eq!(task_state("garbage"), None);
    }
}
