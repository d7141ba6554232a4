//! Sandboxes for workloads: a memory cgroup with limits, plus optional temporary swap.
//!
//! Everything a sandbox creates is named `memtrace-sandbox-<owner pid>-<n>` and is removed on
//! `remove()`, on `Drop` (so also when a test panics) and, for a run that was SIGKILLed, by
//! [`sweep_stale`] in a later run: memtrace must leave the machine as it found it.
mod marker;
pub mod memcg;
mod mount;
mod procs;
pub mod swap;
mod sys;

pub use memcg::{CgroupVersion, Memcg, MemcgLimits};
pub use swap::TempSwap;

use crate::error::Error;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every directory/device name a sandbox creates; the sweep only touches these.
pub const PREFIX: &str = "memtrace-sandbox";

/// Makes names unique within this process; the pid in the name makes them unique across processes.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A fresh `memtrace-sandbox-<our pid>-<n>` name and its `n`.
fn next_name() -> (String, u32) {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    (format!("{PREFIX}-{}-{n}", std::process::id()), n)
}

/// The owner pid embedded in `memtrace-sandbox-<pid>-<n>`, or None for any other name.
fn owner_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// A memcg plus optional temporary swap, removed together (swap last, after the memcg's processes are gone).
// Fields drop in declaration order: the memcg (and the processes in it) must go before the swap,
// or swapoff would have to pull their pages back into memory first.
#[derive(Debug)]
pub struct Sandbox {
    /// The memory cgroup the workload runs in.
    pub memcg: Memcg,
    /// Temporary swap added for the workload, if any.
    pub swap: Option<TempSwap>,
}

impl Sandbox {
    /// Creates the memcg with `limits` and, if `swap_bytes` is given, a temporary swap device of that size.
    pub fn create(limits: &MemcgLimits, swap_bytes: Option<u64>) -> Result<Sandbox, Error> {
        let memcg = Memcg::create(limits)?;
        // If the swap fails, `memcg` is dropped here, which removes it.
        let swap = swap_bytes.map(TempSwap::create).transpose()?;
        Ok(Sandbox { memcg, swap })
    }

    /// Removes the memcg (killing what runs in it), then the swap; tries both, returns the first error.
    pub fn remove(&mut self) -> Result<(), Error> {
        let memcg = self.memcg.remove();
        let swap = self.swap.as_mut().map_or(Ok(()), TempSwap::remove);
        memcg.and(swap)
    }
}

/// Removes leftovers of earlier runs whose owning process is gone (names embed the owner pid: memtrace-sandbox-<pid>-<n>): memcgs (killing processes still inside) and zram swap devices we created (tracked by a marker). Returns what it removed, as human lines.
pub fn sweep_stale() -> Vec<String> {
    let mut removed = Vec::new();
    // Memcgs first: their processes may hold pages in the stale swap.
    match mount::detect() {
        Ok((root, version)) => sweep_memcgs(&root, version, &mut removed),
        Err(e) => log::debug!("sweep: no memory cgroup controller, skipping memcgs: {e}"),
    }
    marker::sweep(&mut removed);
    removed
}

/// Removes the memcgs under `root` whose owning process is gone; one line per removal.
fn sweep_memcgs(root: &Path, version: CgroupVersion, removed: &mut Vec<String>) {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) => {
            log::warn!("sweep: reading {}: {e}", root.display());
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = owner_of(&name) else {
            continue;
        };
        if procs::pid_alive(owner) || !entry.path().is_dir() {
            continue;
        }
        let mut memcg = Memcg::adopt(entry.path(), version);
        let inside = memcg.pids().map_or(0, |p| p.len());
        match memcg.remove() {
            Ok(()) => removed.push(format!(
                "removed stale memory cgroup {} of dead pid {owner} (processes killed: {inside})",
                memcg.path().display()
            )),
            Err(e) => log::warn!("sweep: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_is_parsed_from_our_names_only() {
        assert_eq!(owner_of("memtrace-sandbox-1234-0"), Some(1234));
        assert_eq!(owner_of("memtrace-sandbox-1-17"), Some(1));
        assert_eq!(owner_of("memtrace-sandbox-1234"), None);
        assert_eq!(owner_of("memtrace-sandbox-1234-"), None);
        assert_eq!(owner_of("memtrace-sandbox-swap-1234-zram1"), None);
        assert_eq!(owner_of("memtrace-sandbox-x-0"), None);
        assert_eq!(owner_of("memtrace-sandboxes-1-0"), None);
        assert_eq!(owner_of("user.slice"), None);
        assert_eq!(owner_of("memtrace-sandbox-1234-0.swap"), None);
    }

    #[test]
    fn next_names_are_ours_and_distinct() {
        let (a, _) = next_name();
        let (b, _) = next_name();
        assert_ne!(a, b);
        assert_eq!(owner_of(&a), Some(std::process::id()));
    }
}
