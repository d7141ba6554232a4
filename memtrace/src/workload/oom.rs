//! An OOM hog: allocates and touches anonymous memory in steps, says how far it got after each
//! step (one JSON line), then holds it all until killed. In a memcg smaller than `mib` without
//! swap, the OOM killer ends it.
use std::{io::Write, ptr::NonNull, time::Duration};

/// What the hog does.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HogPlan {
    /// Total anonymous memory to hold.
    pub mib: usize,
    /// Allocated and touched per step.
    pub step_mib: usize,
    /// Written to /proc/self/oom_score_adj first.
    pub oom_score_adj: Option<i32>,
}

/// One progress line.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HogProgress {
    pub pid: u32,
    pub allocated_mib: usize,
    /// All of `mib` is held; the hog now sleeps until killed.
    pub done: bool,
}

/// Maps and touches `mib` of anonymous memory, never unmapped: the hog holds it until it dies.
fn map_and_touch(mib: usize) -> std::io::Result<NonNull<u8>> {
    let len = mib << 20;
    // SAFETY: a fresh private anonymous mapping with no address hint.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // One fault per 4 KiB page rather than one per huge page: steady, predictable charging.
    // SAFETY: the range is the mapping just made.
    unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
    let base = ptr.cast::<u8>();
    for offset in (0..len).step_by(4096) {
        // SAFETY: offset < len, inside the writable mapping.
        unsafe { base.add(offset).write_volatile(1) };
    }
    NonNull::new(base).ok_or_else(|| std::io::Error::other("null mapping"))
}

/// Runs the hog; returns only on error (it holds its memory until killed).
pub fn run(plan: &HogPlan, out: &mut impl Write) -> std::io::Result<()> {
    if let Some(adj) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())?;
    }
    let step = plan.step_mib.max(1);
    let mut progress = HogProgress {
        pid: std::process::id(),
        ..HogProgress::default()
    };
    let mut held = Vec::new();
    while progress.allocated_mib < plan.mib {
        let mib = step.min(plan.mib - progress.allocated_mib);
        held.push(map_and_touch(mib)?);
        progress.allocated_mib += mib;
        progress.done = progress.allocated_mib >= plan.mib;
        writeln!(
            out,
            "{}",
            serde_json::to_string(&progress).map_err(std::io::Error::other)?
        )?;
        out.flush()?;
    }
    if plan.mib == 0 {
        progress.done = true;
        writeln!(
            out,
            "{}",
            serde_json::to_string(&progress).map_err(std::io::Error::other)?
        )?;
        out.flush()?;
    }
    loop {
        std::hint::black_box(&held);
        std::thread::sleep(Duration::from_secs(3600));
    }
}
