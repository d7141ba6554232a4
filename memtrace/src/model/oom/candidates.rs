//! The other processes of the OOM's domain and their points, from the task iterator's snapshot
//! (taken just after the kill, so it shows the domain a few milliseconds later, not the
//! kernel's own selection pass).
use memtrace_common::oom::OomCandidateRecord;

use super::badness::{self, BadnessInputs};
use crate::samples::comm_str;

/// `OOM_SCORE_ADJ_MIN`: the OOM killer never picks such a process.
const OOM_SCORE_ADJ_MIN: i32 = -1000;
/// `MMF_OOM_SKIP` (a `#define`, absent from BTF; bit 21 since 4.x): already reaped or given up on.
const MMF_OOM_SKIP: u64 = 1 << 21;

/// One process of the domain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// Process id, name, owner, and its badness inputs in kB.
    pub pid: u32,
    pub comm: String,
    pub uid: u32,
    pub oom_score_adj: i32,
    pub rss_kb: u64,
    pub swap_kb: u64,
    /// `oom_badness()` in the OOM's domain, and per thousand pages of it.
    pub points: i64,
    pub score_per_mille: i64,
    /// The process the kernel killed (its figures are the ones at the kill).
    pub victim: bool,
    /// Why the kernel would not pick it: `init`, `oom_score_adj=-1000`, `already reaped`.
    pub ineligible: Option<String>,
}

/// The badness inputs of one record.
pub fn inputs_of(record: &OomCandidateRecord) -> BadnessInputs {
    BadnessInputs {
        rss_file_pages: record.rss_file_pages,
        rss_anon_pages: record.rss_anon_pages,
        rss_shmem_pages: record.rss_shmem_pages,
        swap_entries: record.swap_entries,
        pgtables_bytes: record.pgtables_bytes,
        oom_score_adj: record.oom_score_adj,
    }
}

/// The domain's processes, highest points first. `memcg_id`: keep only processes in that memcg
/// or below (a memcg OOM); `None` keeps all (global). The victim, gone or exiting by the time of
/// the snapshot, is represented by `victim`'s figures at the kill.
pub fn rank(
    records: &[OomCandidateRecord],
    memcg_id: Option<u64>,
    victim: (&OomCandidateRecord, BadnessInputs),
    totalpages: u64,
    page_size: u64,
) -> Vec<Candidate> {
    let kb = |pages: i64| u64::try_from(pages).unwrap_or(0) * page_size / 1024;
    let make = |record: &OomCandidateRecord, inputs: BadnessInputs, is_victim: bool| {
        let points = badness::points(&inputs, totalpages, page_size);
        Candidate {
            pid: record.tgid,
            comm: comm_str(&record.comm),
            uid: record.uid,
            oom_score_adj: inputs.oom_score_adj,
            rss_kb: kb(inputs.rss_pages()),
            swap_kb: kb(inputs.swap_entries),
            points,
            score_per_mille: badness::per_mille(points, totalpages),
            victim: is_victim,
            ineligible: ineligible(record, is_victim).map(String::from),
        }
    };
    let (victim_record, victim_inputs) = victim;
    let mut list: Vec<Candidate> = records
        .iter()
        .filter(|r| r.tgid != victim_record.tgid)
        .filter(|r| memcg_id.is_none_or(|id| r.memcg_ids.contains(&id)))
        .map(|r| make(r, inputs_of(r), false))
        .collect();
    list.push(make(victim_record, victim_inputs, true));
    list.sort_by(|a, b| {
        (a.ineligible.is_some(), b.points, a.pid).cmp(&(b.ineligible.is_some(), a.points, b.pid))
    });
    list
}

fn ineligible(record: &OomCandidateRecord, is_victim: bool) -> Option<&'static str> {
    if is_victim {
        None
    } else if record.tgid == 1 {
        Some("init")
    } else if record.oom_score_adj == OOM_SCORE_ADJ_MIN {
        Some("oom_score_adj=-1000")
    } else if record.mm_flags & MMF_OOM_SKIP != 0 {
        Some("already reaped")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::decode::encode;

    pub(crate) fn record(tgid: u32, anon: i64, adj: i32, memcg: u64) -> OomCandidateRecord {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"hog");
        let mut memcg_ids = [0; 8];
        memcg_ids[..2].copy_from_slice(&[memcg, 1]);
        OomCandidateRecord {
            tgid,
            pid: tgid,
            oom_score_adj: adj,
            task_flags: 0,
            uid: 0,
            _pad: 0,
            comm,
            rss_file_pages: 0,
            rss_anon_pages: anon,
            swap_entries: 0,
            rss_shmem_pages: 0,
            pgtables_bytes: 0,
            mm_flags: 0,
            memcg_ids,
        }
    }

    #[test]
    fn records_parse_and_partial_ones_are_dropped() {
        assert_eq!(size_of::<OomCandidateRecord>(), 152);
        let mut bytes = encode(&record(10, 5, 0, 77));
        bytes.extend(encode(&record(11, 6, 0, 77)));
        bytes.extend([1, 2, 3]);
        let parsed = crate::collect::decode::candidate_records(&bytes);
        assert_eq!(
            parsed.iter().map(|r| r.tgid).collect::<Vec<_>>(),
            vec![10, 11]
        );
    }

    #[test]
    fn ranks_the_domain_highest_first_with_the_victim_at_kill() {
        let sleeper = record(20, 6_144, 500, 77);
        let records = [
            record(1, 100, 0, 1),
            record(21, 6_000, 0, 77),
            record(22, 9_000, 0, 99),
        ];
        // The victim has exited: its record is not in the snapshot, its kill figures are used.
        let victim = (&sleeper, inputs_of(&sleeper));
        let list = rank(&records, Some(77), victim, 12_288, 4096);
        let pids: Vec<u32> = list.iter().map(|c| c.pid).collect();
        assert_eq!(pids, vec![20, 21], "the domain only, highest first");
        assert_eq!(list[0].points, 6_144 + 500 * 12);
        assert!(list[0].victim && !list[1].victim);
        assert_eq!(list[1].score_per_mille, 6_000 * 1000 / 12_288);
        // Global: everyone, init last as ineligible.
        let all = rank(&records, None, victim, 1_000_000, 4096);
        assert_eq!(
            all.last().map(|c| (c.pid, c.ineligible.as_deref())),
            Some((1, Some("init")))
        );
        assert_eq!(all.len(), 4);
    }
}
