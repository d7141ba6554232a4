//! Traced processes' memory at each interval's close: the `process_memory` task iterator's
//! records, reduced to what changed since the recording last kept them. Holds one reading per
//! live traced process, so it is bounded by what runs, not by what ever ran.
use std::collections::{BTreeMap, HashMap};

use memtrace_common::growth::MemoryRecord;

use super::decode::iterator_records;
use crate::samples::{
    comm_str,
    growth::{MAX_READINGS, MemcgUsage, MemoryInterval, MemoryReading, ProcessKey},
};

/// A page counter at or above this many pages is "no limit" (`PAGE_COUNTER_MAX` is
/// `LONG_MAX / PAGE_SIZE`).
const NO_LIMIT_PAGES: u64 = 1 << 50;

/// What the recording holds of each live traced process and memory cgroup.
pub struct MemoryWatch {
    page_kb: u64,
    /// Each process's kept reading, and the last reading that found it.
    kept: HashMap<ProcessKey, (MemoryReading, u64)>,
    memcgs: HashMap<u64, MemcgUsage>,
    /// Readings taken so far.
    generation: u64,
}

impl MemoryWatch {
    pub fn new(page_kb: u64) -> Self {
        Self {
            page_kb,
            kept: HashMap::new(),
            memcgs: HashMap::new(),
            generation: 0,
        }
    }

    /// The interval's readings from one run of the iterator (its raw bytes), taken at
    /// `read_ns`. The records are compared with the kept readings one at a time: with
    /// thousands of processes, only the changed ones are held at once.
    pub fn reading(&mut self, bytes: &[u8], read_ns: u64) -> MemoryInterval {
        self.generation += 1;
        let generation = self.generation;
        let mut changed: Vec<(u64, MemoryReading)> = Vec::new();
        // By id: a cgroup read twice in one pass (two of its processes) keeps its last usage.
        let mut memcg_changes: BTreeMap<u64, MemcgUsage> = BTreeMap::new();
        for record in iterator_records::<MemoryRecord>(bytes) {
            if record.memcg_id != 0 {
                let usage = self.to_memcg(&record);
                if self.memcgs.insert(usage.id, usage) != Some(usage) {
                    memcg_changes.insert(usage.id, usage);
                }
            }
            let reading = self.to_reading(&record);
            match self.kept.get_mut(&reading.key()) {
                // Same memory, cgroup and name: nothing to keep.
                Some((kept, seen)) if *kept == reading => *seen = generation,
                Some((kept, seen)) => {
                    *seen = generation;
                    changed.push((reading.total_kb().abs_diff(kept.total_kb()), reading));
                }
                None => changed.push((reading.total_kb(), reading)),
            }
        }
        let mut gone: Vec<ProcessKey> = self
            .kept
            .iter()
            .filter(|(_, (_, seen))| *seen != generation)
            .map(|(key, _)| *key)
            .collect();
        gone.sort_unstable();
        for key in &gone {
            self.kept.remove(key);
        }
        // Changed or new, the largest change first: over the cap, the rest wait.
        changed.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.pid.cmp(&b.1.pid)));
        let deferred = changed.len().saturating_sub(MAX_READINGS) as u32;
        changed.truncate(MAX_READINGS);
        let mut readings: Vec<MemoryReading> = changed.into_iter().map(|(_, r)| r).collect();
        readings.sort_unstable_by_key(MemoryReading::key);
        for reading in &readings {
            self.kept
                .insert(reading.key(), (reading.clone(), generation));
        }
        MemoryInterval {
            read_ns,
            readings,
            gone,
            memcgs: memcg_changes.into_values().collect(),
            deferred,
        }
    }

    fn to_reading(&self, record: &MemoryRecord) -> MemoryReading {
        let kb = |pages: i64| u64::try_from(pages).unwrap_or(0) * self.page_kb;
        MemoryReading {
            pid: record.tgid,
            start_ns: record.start_ns,
            comm: comm_str(&record.comm),
            memcg_id: record.memcg_id,
            rss_anon_kb: kb(record.rss_anon_pages),
            rss_file_kb: kb(record.rss_file_pages),
            rss_shmem_kb: kb(record.rss_shmem_pages),
            swap_kb: kb(record.swap_entries),
        }
    }

    fn to_memcg(&self, record: &MemoryRecord) -> MemcgUsage {
        MemcgUsage {
            id: record.memcg_id,
            usage_kb: record.memcg_usage_pages * self.page_kb,
            limit_kb: (record.memcg_max_pages < NO_LIMIT_PAGES)
                .then(|| record.memcg_max_pages * self.page_kb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tgid: u32, anon: i64, memcg_max: u64) -> MemoryRecord {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"leak");
        MemoryRecord {
            tgid,
            start_ns: u64::from(tgid) * 10,
            rss_anon_pages: anon,
            rss_file_pages: 10,
            memcg_id: 7,
            memcg_usage_pages: 1000,
            memcg_max_pages: memcg_max,
            comm,
            ..MemoryRecord::default()
        }
    }

    fn bytes(records: &[MemoryRecord]) -> Vec<u8> {
        records
            .iter()
            .flat_map(|r| {
                // SAFETY: a Pod record viewed as its bytes.
                unsafe {
                    std::slice::from_raw_parts(
                        (r as *const MemoryRecord).cast::<u8>(),
                        size_of::<MemoryRecord>(),
                    )
                }
                .to_vec()
            })
            .collect()
    }

    #[test]
    fn keeps_only_changes_and_reports_the_gone() {
        let mut watch = MemoryWatch::new(4);
        let first = watch.reading(&bytes(&[record(1, 100, 5000), record(2, 50, 5000)]), 1);
        assert_eq!(first.readings.len(), 2);
        assert_eq!(first.readings[0].rss_anon_kb, 400);
        assert_eq!(first.readings[0].rss_file_kb, 40);
        assert_eq!(first.readings[0].comm, "leak");
        assert_eq!(
            first.memcgs,
            vec![MemcgUsage {
                id: 7,
                usage_kb: 4000,
                limit_kb: Some(20_000)
            }]
        );
        // pid 1 grew, pid 2 is unchanged, pid 3 is new.
        let second = watch.reading(
            &bytes(&[
                record(1, 150, 5000),
                record(2, 50, 5000),
                record(3, 1, 5000),
            ]),
            2,
        );
        let pids: Vec<u32> = second.readings.iter().map(|r| r.pid).collect();
        assert_eq!(pids, vec![1, 3]);
        assert!(second.memcgs.is_empty());
        assert!(second.gone.is_empty());
        // pid 2 exited.
        let third = watch.reading(&bytes(&[record(1, 150, 5000), record(3, 1, 5000)]), 3);
        assert!(third.readings.is_empty());
        assert_eq!(
            third.gone,
            vec![ProcessKey {
                pid: 2,
                start_ns: 20
            }]
        );
        assert_eq!(watch.kept.len(), 2);
    }

    #[test]
    fn a_huge_page_counter_is_no_limit_and_a_partial_record_is_dropped() {
        let mut watch = MemoryWatch::new(4);
        let mut raw = bytes(&[record(1, 1, u64::MAX / 4096)]);
        raw.extend_from_slice(&[0; 10]);
        let reading = watch.reading(&raw, 1);
        assert_eq!(reading.readings.len(), 1);
        assert_eq!(reading.memcgs[0].limit_kb, None);
    }

    #[test]
    fn over_the_cap_the_largest_changes_go_first_and_the_rest_wait() {
        let mut watch = MemoryWatch::new(4);
        let many: Vec<MemoryRecord> = (1..=(MAX_READINGS as u32 + 5))
            .map(|pid| record(pid, i64::from(pid), 0))
            .collect();
        let first = watch.reading(&bytes(&many), 1);
        assert_eq!(first.readings.len(), MAX_READINGS);
        assert_eq!(first.deferred, 5);
        assert!(
            first.readings.iter().all(|r| r.pid > 5),
            "the smallest wait"
        );
        let second = watch.reading(&bytes(&many), 2);
        assert_eq!(second.readings.len(), 5);
        assert_eq!(second.deferred, 0);
    }
}
