//! A recording that rotates, for runs of days (`serve -o`): when the current file reaches its
//! size or its age, it is ended (stop reason `rotated`) and renamed `FILE.1` (older ones move
//! up to `FILE.2`, ... and the oldest beyond `keep` is removed), and a new `FILE` starts.
//!
//! Every file is a whole recording of its own: its header starts where its first interval
//! starts, and its kernel counters (lost records, unmatched ends, ...) count from its start,
//! so `memtrace report` reads any one of them alone. A memory cgroup is named in the run's
//! samples only where it first appears; a file that starts later names again the ones its
//! intervals refer to.
use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use super::writer::Writer;
use crate::{
    collect::interval::NAME_AGAIN_AFTER,
    collect::session::SampleSink,
    error::Error,
    samples::{CgroupName, End, Header, IntervalSample, KernelCounters, StopReason},
};

/// When to rotate, and how many old files to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file holds at least this many bytes (0: never by size).
    pub max_bytes: u64,
    /// Rotate once the file covers at least this long (0: never by age).
    pub max_age_ns: u64,
    /// Old files kept beside the current one (`FILE.1` ... `FILE.keep`).
    pub keep: u32,
}

impl Rotation {
    fn due(&self, bytes: u64, age_ns: u64) -> bool {
        (self.max_bytes > 0 && bytes >= self.max_bytes)
            || (self.max_age_ns > 0 && age_ns >= self.max_age_ns)
    }
}

/// Writes samples to `FILE`, rotating it.
pub struct RotatingWriter {
    current: Writer,
    rotation: Rotation,
    /// The run's header, the template of every file's.
    header: Option<Header>,
    /// When the current file starts (CLOCK_MONOTONIC), and the run's counters then.
    file_start_ns: u64,
    base: KernelCounters,
    /// Files ended so far.
    rotated: u64,
    /// Names of the memory cgroups seen lately (with the last interval each was seen in),
    /// and those named in the current file.
    names: HashMap<u64, (CgroupName, u64)>,
    named_here: HashSet<u64>,
    /// Why rotating failed (a rename, a new file), if it did; writing stops then.
    failed: Option<String>,
}

impl RotatingWriter {
    /// Creates `path` (refused up front when it can't be written).
    pub fn create(path: &Path, rotation: Rotation) -> Result<Self, Error> {
        Ok(Self {
            current: Writer::create(path)?,
            rotation,
            header: None,
            file_start_ns: 0,
            base: KernelCounters::default(),
            rotated: 0,
            names: HashMap::new(),
            named_here: HashSet::new(),
            failed: None,
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        self.current.path()
    }

    /// Files ended and renamed so far.
    pub fn rotated(&self) -> u64 {
        self.rotated
    }

    /// Intervals in the current file.
    pub fn intervals(&self) -> u64 {
        self.current.intervals()
    }

    /// Why the recording stopped being written, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref().or(self.current.failure())
    }

    /// Ends the current file at `sample` and starts the next one after it.
    fn rotate(&mut self, sample: &IntervalSample) -> Result<(), String> {
        let Some(template) = &self.header else {
            return Ok(());
        };
        self.current.end(&End {
            stop: StopReason::Rotated,
            elapsed_ns: sample.end_ns.saturating_sub(self.file_start_ns),
            counters: since(&sample.counters, &self.base),
        });
        let path = self.current.path().to_path_buf();
        shift(&path, self.rotation.keep)
            .map_err(|e| format!("rotating {}: {e}", path.display()))?;
        self.current = Writer::create(&path).map_err(|e| e.to_string())?;
        let mut header = template.clone();
        header.start_unix_ns += sample.end_ns.saturating_sub(template.start_mono_ns);
        header.start_mono_ns = sample.end_ns;
        header.machine = sample.machine;
        self.current.header(&header);
        self.file_start_ns = sample.end_ns;
        self.base = sample.counters;
        self.rotated += 1;
        self.named_here.clear();
        Ok(())
    }

    /// The sample as this file keeps it: counters from the file's start, and every memory
    /// cgroup it refers to named in the file.
    fn own(&mut self, sample: &IntervalSample) -> IntervalSample {
        let mut own = sample.clone();
        own.counters = since(&sample.counters, &self.base);
        for name in &sample.cgroups {
            self.names.insert(name.id, (name.clone(), sample.index));
            self.named_here.insert(name.id);
        }
        let referred = sample
            .processes
            .iter()
            .map(|p| p.memcg_id)
            .chain(sample.swap_by_memcg.iter().map(|m| m.memcg_id));
        for id in referred {
            if let Some((name, seen)) = self.names.get_mut(&id) {
                *seen = sample.index;
                if self.named_here.insert(id) {
                    own.cgroups.push(name.clone());
                }
            }
        }
        if sample.index.is_multiple_of(NAME_AGAIN_AFTER) {
            let index = sample.index;
            self.names
                .retain(|_, (_, seen)| index - *seen < NAME_AGAIN_AFTER);
        }
        own
    }
}

impl SampleSink for RotatingWriter {
    fn header(&mut self, header: &Header) {
        self.file_start_ns = header.start_mono_ns;
        self.header = Some(header.clone());
        self.current.header(header);
    }

    fn interval(&mut self, sample: &IntervalSample) {
        if self.failed.is_some() {
            return;
        }
        let own = self.own(sample);
        self.current.interval(&own);
        let age = sample.end_ns.saturating_sub(self.file_start_ns);
        if self.rotation.due(self.current.bytes(), age)
            && let Err(reason) = self.rotate(sample)
        {
            log::warn!("{reason}; the recording stops here");
            self.failed = Some(reason);
        }
    }

    fn end(&mut self, end: &End) {
        if self.failed.is_some() {
            return;
        }
        let mut own = *end;
        own.counters = since(&end.counters, &self.base);
        if self.rotated > 0 {
            own.elapsed_ns = (self.header.as_ref().map_or(0, |h| h.start_mono_ns) + end.elapsed_ns)
                .saturating_sub(self.file_start_ns);
        }
        self.current.end(&own);
    }
}

/// `FILE.N` for N ≥ 1.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Renames `FILE.keep-1` → `FILE.keep`, ..., `FILE` → `FILE.1`; with `keep` 0 the current file
/// is removed instead.
fn shift(path: &Path, keep: u32) -> std::io::Result<()> {
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    for n in (1..keep).rev() {
        match std::fs::rename(numbered(path, n), numbered(path, n + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(path, 1))
}

/// `now - base`, counter by counter.
fn since(now: &KernelCounters, base: &KernelCounters) -> KernelCounters {
    let mut lost = now.lost;
    for (l, b) in lost.iter_mut().zip(base.lost) {
        *l = l.saturating_sub(b);
    }
    KernelCounters {
        lost,
        unmatched_ends: now.unmatched_ends.saturating_sub(base.unmatched_ends),
        parked: now.parked.saturating_sub(base.parked),
        park_failed: now.park_failed.saturating_sub(base.park_failed),
        children_added: now.children_added.saturating_sub(base.children_added),
        children_dropped: now.children_dropped.saturating_sub(base.children_dropped),
        stalls_dropped: now.stalls_dropped.saturating_sub(base.stalls_dropped),
    }
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
