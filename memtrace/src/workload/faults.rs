//! A workload with known page-fault counts: file-backed major faults, anonymous minor faults,
//! and swap-ins (when run in a memory cgroup smaller than `swap_mib`, with swap on).
use std::{
    fs::File,
    io::Write,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    ptr::NonNull,
};

use super::FaultCounters;

/// Page size assumed by the workload (and checked at run time).
const PAGE: usize = 4096;

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

/// An anonymous or file mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize, fd: Option<i32>) -> std::io::Result<Self> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED, fd),
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
        };
        let prot = libc::PROT_READ | (libc::PROT_WRITE * i32::from(fd < 0));
        // SAFETY: a fresh mapping with no address hint; failure is MAP_FAILED.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Self { ptr, len })
            .ok_or_else(|| std::io::Error::other("null mapping"))
    }

    fn advise(&self, advice: i32) -> std::io::Result<()> {
        // SAFETY: the range is this mapping.
        if unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, advice) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads (or writes) one byte per page; volatile so the compiler keeps every access.
    fn touch_pages(&self, write: bool) -> u64 {
        let mut sum = 0u64;
        for offset in (0..self.len).step_by(PAGE) {
            // SAFETY: offset < len, inside the mapping.
            let byte = unsafe { self.ptr.as_ptr().add(offset) };
            if write {
                // SAFETY: as above; the mapping is writable when `write` is asked.
                unsafe { byte.write_volatile((offset / PAGE) as u8 | 1) };
            } else {
                // SAFETY: as above.
                sum += u64::from(unsafe { byte.read_volatile() });
            }
        }
        sum
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Writes a file, drops its page cache, then reads one byte per page through a random-access
/// mapping: every page is a page-cache miss, a major fault.
fn file_phase(dir: &Path, mib: usize) -> std::io::Result<u64> {
    let path = dir.join(format!(".memtrace-workload-{}", std::process::id()));
    let result = (|| {
        let mut file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let chunk = vec![0x5a_u8; 1 << 20];
        for _ in 0..mib {
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        let len = mib << 20;
        // SAFETY: plain syscall on our own fd.
        let rc = unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, len as i64, libc::POSIX_FADV_DONTNEED)
        };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
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
    let map = Mapping::new(len, None)?;
    // Transparent huge pages would turn 512 faults into one.
    map.advise(libc::MADV_NOHUGEPAGE)?;
    map.touch_pages(true);
    if read_back {
        map.touch_pages(false);
    }
    Ok((len / PAGE) as u64)
}
