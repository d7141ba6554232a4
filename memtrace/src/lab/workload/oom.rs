//! An OOM hog: allocates and touches anonymous memory in steps, says how far it got after each
//! step (one JSON line), then holds it all until killed. In a memcg smaller than `mib` without
//! swap, the OOM killer ends it.
use std::{io::Write, time::Duration};

use super::mapping::Mapping;

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

/// Maps and touches `mib` of anonymous memory (4 KiB pages: steady, predictable charging),
/// which the hog holds until it dies.
fn map_and_touch(mib: usize) -> std::io::Result<Mapping> {
    let map = Mapping::anonymous(mib << 20)?;
    map.touch_pages(true);
    Ok(map)
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
