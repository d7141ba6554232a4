//! Major faults by file: the builder's per-interval accumulation, and the names of the files,
//! found in the faulting process's mappings (`/proc/PID/maps` lists each mapped file with its
//! device and inode) while it lives.
use std::collections::HashMap;

use memtrace_common::FaultEvent;

use crate::samples::{LatencyStats, comm_str, files::FileFaults};

/// Files whose names are remembered; past this the cache starts again.
const NAMES_KEPT: usize = 4096;

/// One interval's major faults by (device, inode).
#[derive(Default)]
pub struct FileAccum {
    files: HashMap<(u32, u64), FileFaults>,
}

impl FileAccum {
    /// Adds a major file fault that named its file.
    pub fn add(&mut self, event: &FaultEvent) {
        let file = self
            .files
            .entry((event.file_dev, event.file_ino))
            .or_insert_with(|| FileFaults {
                dev: event.file_dev,
                ino: event.file_ino,
                latency: LatencyStats::new(),
                ..FileFaults::default()
            });
        file.pid = event.tgid;
        file.comm = comm_str(&event.comm);
        file.latency.record(event.latency_ns);
    }

    /// The interval's files, most faults first, and a fresh start.
    pub fn close(&mut self) -> Vec<FileFaults> {
        let mut files: Vec<FileFaults> = self.files.drain().map(|(_, file)| file).collect();
        files.sort_by(FileFaults::most_faults_first);
        files
    }
}

/// Paths of files by (device, inode), as found.
#[derive(Default)]
pub struct FileNames {
    known: HashMap<(u32, u64), Option<String>>,
}

impl FileNames {
    /// Names each file from its faulting process's mappings (once per file).
    pub fn name(&mut self, files: &mut [FileFaults]) {
        if self.known.len() > NAMES_KEPT {
            self.known.clear();
        }
        for file in files {
            let path = self
                .known
                .entry((file.dev, file.ino))
                .or_insert_with(|| {
                    let maps = std::fs::read_to_string(format!("/proc/{}/maps", file.pid)).ok()?;
                    path_in_maps(&maps, file.dev, file.ino)
                })
                .clone();
            file.path = path;
        }
    }
}

/// The path of the mapping of (`dev`, `ino`) in a `/proc/PID/maps` text. Its device field is
/// `major:minor` in hex; `dev` is the kernel's `s_dev` (major << 20 | minor).
pub fn path_in_maps(maps: &str, dev: u32, ino: u64) -> Option<String> {
    let want = (dev >> 20, dev & 0xf_ffff);
    maps.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let device = fields.nth(3)?;
        let inode: u64 = fields.next()?.parse().ok()?;
        let (major, minor) = device.split_once(':')?;
        let parsed = (
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
        );
        // The path is the rest of the line after the inode (it may hold spaces).
        (inode == ino && parsed == want).then(|| {
            let rest = line
                .splitn(6, |c: char| c.is_ascii_whitespace())
                .nth(5)
                .unwrap_or("");
            rest.trim_start().to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
5581a1c00000-5581a1c2a000 r--p 00000000 fd:01 1835042                    /usr/bin/memtrace
7f3c40000000-7f3c48000000 r--s 00000000 08:11 12                         /var/tmp/a file (deleted)
7ffd2b1e0000-7ffd2b201000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn finds_a_mapped_file_by_device_and_inode() {
        let dev = (0xfd << 20) | 1;
        assert_eq!(
            path_in_maps(MAPS, dev, 1_835_042).as_deref(),
            Some("/usr/bin/memtrace")
        );
        assert_eq!(
            path_in_maps(MAPS, (8 << 20) | 0x11, 12).as_deref(),
            Some("/var/tmp/a file (deleted)")
        );
        assert_eq!(
            path_in_maps(MAPS, dev, 12),
            None,
            "same inode, other device"
        );
        assert_eq!(path_in_maps("garbage\n", dev, 1), None);
    }

    #[test]
    fn the_interval_counts_per_file_most_faults_first() {
        let mut accum = FileAccum::default();
        let mut event = FaultEvent {
            kind: memtrace_common::EventKind::Fault as u32,
            class: memtrace_common::FaultClass::MajorFile as u32,
            tgid: 42,
            tid: 42,
            comm: [0; 16],
            ..FaultEvent::default()
        };
        for (ino, latency) in [(5, 100), (7, 200), (7, 300)] {
            event.file_ino = ino;
            event.file_dev = 9;
            event.latency_ns = latency;
            accum.add(&event);
        }
        let files = accum.close();
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].ino, files[0].latency.count()), (7, 2));
        assert_eq!(files[0].name(), "0:9:7");
        assert!(accum.close().is_empty(), "a fresh start");
    }
}
