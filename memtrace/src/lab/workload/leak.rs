//! A leak with a known rate: `leak_pages` takes new anonymous memory at a steady pace and
//! never gives it back, or (`sawtooth`) gives it all back every cycle. Every page is touched by
//! `leak_pages` itself, so the faults that bring them in all have it on their stack.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{PAGE, mapping::Mapping};

/// Chunks per second: the pace is kept per chunk, against the clock.
const TICKS_PER_S: u32 = 10;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct LeakPlan {
    /// KiB taken per second.
    pub kib_per_s: u64,
    /// How long; `None`: until killed.
    pub seconds: Option<f64>,
    /// Give everything back whenever the leak reaches this many KiB (0: never).
    pub sawtooth_kib: u64,
}

/// What it did, measured by itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LeakOutcome {
    /// Pages touched in all, and freed (sawtooth).
    pub pages_taken: u64,
    pub pages_freed: u64,
    /// Wall time from the first chunk to the last.
    pub elapsed_s: f64,
    /// What it held at the end, in KiB: taken less freed.
    pub held_kib: u64,
    /// The rate it kept: KiB taken over the elapsed time.
    pub kib_per_s: f64,
}

/// Runs the plan.
pub fn run(plan: &LeakPlan) -> std::io::Result<LeakOutcome> {
    let chunk_kib = (plan.kib_per_s / u64::from(TICKS_PER_S)).max(4);
    let chunk = (chunk_kib as usize * 1024).div_ceil(PAGE) * PAGE;
    let tick = Duration::from_secs(1) / TICKS_PER_S;
    let start = Instant::now();
    let mut held: Vec<Mapping> = Vec::new();
    let mut outcome = LeakOutcome::default();
    let mut ticks = 0u32;
    loop {
        if plan
            .seconds
            .is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let mapping = Mapping::anonymous(chunk)?;
        outcome.pages_taken += leak_pages(&mapping, chunk);
        held.push(mapping);
        let held_kib = held.len() as u64 * chunk as u64 / 1024;
        if plan.sawtooth_kib > 0 && held_kib >= plan.sawtooth_kib {
            outcome.pages_freed += (held.len() * chunk / PAGE) as u64;
            held.clear();
        }
        ticks += 1;
        let next = start + tick * ticks;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    outcome.elapsed_s = start.elapsed().as_secs_f64();
    // A leak never gives its memory back: the process's exit frees it, out of sight of a
    // tracer's last reading (unmapping it here would show as a fall at the very end).
    std::mem::forget(held);
    outcome.held_kib = (outcome.pages_taken - outcome.pages_freed) * PAGE as u64 / 1024;
    outcome.kib_per_s = (outcome.pages_taken * PAGE as u64 / 1024) as f64 / outcome.elapsed_s;
    Ok(outcome)
}

/// Touches every page of `mapping` (`len` bytes): the function a flame graph of this workload
/// must show. Returns the pages touched.
#[inline(never)]
pub fn leak_pages(mapping: &Mapping, len: usize) -> u64 {
    let base = mapping.as_ptr();
    let mut pages = 0;
    for offset in (0..len).step_by(PAGE) {
        // SAFETY: `offset` is inside the mapping, which is writable and lives for this call.
        unsafe { std::ptr::write_volatile(base.add(offset), 1) };
        pages += 1;
    }
    pages
}
