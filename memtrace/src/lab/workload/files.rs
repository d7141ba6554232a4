//! Major faults on known files: each file is written, dropped from the page cache, and read one
//! byte a page through a random-access mapping, so every page is one major fault of that file.
//! The mappings stay until the end (`hold`), so a tracer can find their paths.
use std::{os::fd::AsRawFd, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

use super::{FaultCounters, PAGE, mapping::Mapping};

/// One file read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FileRead {
    pub path: String,
    /// Pages touched, and the process's major faults meanwhile (the kernel's count).
    pub pages: u64,
    pub majflt: u64,
}

/// Reads a file of each size in `mibs` (created in `dir`, removed at the end), then holds the
/// mappings for `hold`.
pub fn run(dir: &Path, mibs: &[usize], hold: Duration) -> std::io::Result<Vec<FileRead>> {
    let paths: Vec<_> = (0..mibs.len())
        .map(|i| dir.join(format!(".memtrace-files-{}-{i}", std::process::id())))
        .collect();
    let result = (|| {
        let mut reads = Vec::new();
        let mut held = Vec::new();
        for (path, &mib) in paths.iter().zip(mibs) {
            let file = super::cold_file(path, mib)?;
            let len = mib << 20;
            let map = Mapping::new(len, Some(file.as_raw_fd()))?;
            map.advise(libc::MADV_RANDOM)?;
            let before = FaultCounters::read("self")?;
            map.touch_pages(false);
            let after = FaultCounters::read("self")?;
            reads.push(FileRead {
                path: path.display().to_string(),
                pages: (len / PAGE) as u64,
                majflt: after.since(&before).majflt,
            });
            held.push(map);
        }
        std::thread::sleep(hold);
        Ok(reads)
    })();
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    result
}
