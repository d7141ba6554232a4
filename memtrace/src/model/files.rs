//! Major faults by file over the recording. At most [`KEEP_FILES`] files are kept one by one;
//! past that the file with the fewest faults is folded into one entry for the others, so every
//! fault still counts.
use std::collections::HashMap;

use crate::samples::{LatencyStats, files::FileFaults};

/// Files kept one by one.
pub const KEEP_FILES: usize = 256;

/// Every file's major faults so far.
#[derive(Clone, Debug, Default)]
pub struct FileLog {
    files: HashMap<(u32, u64), FileFaults>,
    /// Faults of the files folded together (`None` until one is).
    pub others: Option<LatencyStats>,
    /// Files folded into `others`.
    pub folded: u64,
}

impl FileLog {
    /// Adds one interval's files.
    pub fn apply(&mut self, files: &[FileFaults]) {
        for file in files {
            let kept = self
                .files
                .entry((file.dev, file.ino))
                .or_insert_with(|| FileFaults {
                    dev: file.dev,
                    ino: file.ino,
                    latency: LatencyStats::new(),
                    ..FileFaults::default()
                });
            kept.latency.merge_compact(&file.latency);
            kept.pid = file.pid;
            kept.comm.clone_from(&file.comm);
            if file.path.is_some() {
                kept.path.clone_from(&file.path);
            }
        }
        while self.files.len() > KEEP_FILES {
            let Some(key) = self
                .files
                .iter()
                .min_by_key(|(key, f)| (f.latency.count(), **key))
                .map(|(key, _)| *key)
            else {
                break;
            };
            if let Some(file) = self.files.remove(&key) {
                self.others
                    .get_or_insert_with(LatencyStats::new)
                    .merge_compact(&file.latency);
                self.folded += 1;
            }
        }
    }

    /// The files kept, most faults first.
    pub fn files(&self) -> Vec<&FileFaults> {
        let mut files: Vec<&FileFaults> = self.files.values().collect();
        files.sort_by(|a, b| FileFaults::most_faults_first(a, b));
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(ino: u64, faults: u64, path: Option<&str>) -> FileFaults {
        let mut latency = LatencyStats::new();
        for i in 0..faults {
            latency.record(1000 + i);
        }
        FileFaults {
            dev: 1,
            ino,
            path: path.map(String::from),
            pid: 7,
            comm: "reader".into(),
            latency,
        }
    }

    #[test]
    fn intervals_add_up_per_file_and_keep_a_found_path() {
        let mut log = FileLog::default();
        log.apply(&[file(1, 3, Some("/a")), file(2, 1, None)]);
        log.apply(&[file(1, 2, None), file(2, 5, Some("/b"))]);
        let files = log.files();
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].ino, files[0].latency.count()), (2, 6));
        assert_eq!(files[0].path.as_deref(), Some("/b"));
        assert_eq!(
            (files[1].latency.count(), files[1].path.as_deref()),
            (5, Some("/a"))
        );
        assert!(log.others.is_none());
    }

    #[test]
    fn past_the_cap_the_smallest_are_folded_and_still_count() {
        let mut log = FileLog::default();
        let many: Vec<FileFaults> = (0..KEEP_FILES as u64 + 3)
            .map(|i| file(i, i + 1, None))
            .collect();
        log.apply(&many);
        assert_eq!(log.files().len(), KEEP_FILES);
        assert_eq!(log.folded, 3);
        assert_eq!(
            log.others.as_ref().map(LatencyStats::count),
            Some(1 + 2 + 3)
        );
    }
}
