//! Tests of the OOM pipeline without a kernel: records, decisions, arithmetic, rendering.
mod domain;
mod model;

use std::{collections::BTreeMap, path::PathBuf};

use memtrace_common::{
    EventKind,
    oom::{MemcgLevel, OomCandidateRecord, OomKillEvent, OomReclaim, oom_flags},
};

use crate::samples::{
    host::HostMemory,
    oom::{KmsgOom, OomSample},
};

/// 48 MiB in 4 KiB pages.
pub const LIMIT_PAGES: u64 = 12_288;
/// `PAGE_COUNTER_MAX` on x86_64.
pub const NO_LIMIT: u64 = (1 << 51) - 1;

fn comm(name: &[u8]) -> [u8; 16] {
    let mut comm = [0u8; 16];
    comm[..name.len()].copy_from_slice(name);
    comm
}

/// A memcg level with `usage` pages against `max`, memsw equal to memory (no swap).
pub fn level(id: u64, usage: u64, max: u64, oom_lock: u32) -> MemcgLevel {
    MemcgLevel {
        id,
        usage_pages: usage,
        max_pages: max,
        swap_usage_pages: usage,
        swap_max_pages: max,
        oom_events: 1,
        oom_lock,
        swappiness: 60,
    }
}

/// A hog (pid 4242) killed in memcg 77 (48 MiB, no swap) by its own charge.
pub fn kill_event() -> OomKillEvent {
    let mut memcg = [MemcgLevel::default(); 8];
    memcg[0] = level(77, LIMIT_PAGES, LIMIT_PAGES, 1);
    memcg[1] = level(1, 900_000, NO_LIMIT, 0);
    OomKillEvent {
        kind: EventKind::OomKill as u32,
        flags: oom_flags::KILL_SIGNAL_HOOKED
            | oom_flags::KILL_SIGNAL_SEEN
            | oom_flags::OOM_LOCK_KNOWN,
        ts_ns: 5_000_000_000,
        victim_pid: 4242,
        victim_tgid: 4242,
        victim_uid: 0,
        victim_oom_score_adj: 0,
        victim_comm: comm(b"mt-workload"),
        total_vm_pages: 13_000,
        rss_file_pages: 700,
        rss_anon_pages: 12_200,
        swap_entries: 0,
        rss_shmem_pages: 0,
        pgtables_bytes: 37 * 4096,
        trigger_pid: 4242,
        trigger_tgid: 4242,
        trigger_comm: comm(b"mt-workload"),
        trigger_memcg_id: 77,
        trigger_stack_id: 3,
        reclaim_kind: OomReclaim::Memcg as u32,
        memcg_levels: 2,
        reclaim_ns: 4_999_000_000,
        mems_allowed: 1,
        mempolicy_nodes: 0,
        mempolicy_mode: 0,
        _pad: 0,
        memcg,
    }
}

/// A process as the task iterator reports it.
pub fn candidate(tgid: u32, anon: i64, adj: i32, memcg: u64) -> OomCandidateRecord {
    let mut memcg_ids = [0; 8];
    memcg_ids[..2].copy_from_slice(&[memcg, 1]);
    OomCandidateRecord {
        tgid,
        pid: tgid,
        oom_score_adj: adj,
        task_flags: 0,
        uid: 1000,
        _pad: 0,
        comm: comm(b"other"),
        rss_file_pages: 0,
        rss_anon_pages: anon,
        swap_entries: 0,
        rss_shmem_pages: 0,
        pgtables_bytes: 0,
        mm_flags: 0,
        memcg_ids,
    }
}

/// The context of `event` as the collector would sample it on a 24 GiB machine without swap.
pub fn sample(event: OomKillEvent) -> OomSample {
    let frames = [
        "mark_oom_victim+0x5",
        "out_of_memory+0x1e0",
        "try_charge_memcg+0x3a1",
    ];
    OomSample {
        event,
        start_ns: 1_000_000_000,
        sampled_ns: event.ts_ns + 2_000_000,
        host: HostMemory {
            page_size: 4096,
            ram_pages: 6_000_000,
            swap_pages: 0,
            vm_swappiness: 60,
            memory_nodes: 1,
            node_present_pages: BTreeMap::from([(0, 6_291_456)]),
            ..HostMemory::default()
        },
        v1: true,
        level_paths: vec![
            Some(PathBuf::from("/sys/fs/cgroup/memory/box")),
            Some(PathBuf::from("/sys/fs/cgroup/memory")),
        ],
        trigger_cgroup: Some(PathBuf::from("/sys/fs/cgroup/memory/box")),
        stack: Ok(frames.iter().map(|f| f.to_string()).collect()),
        candidates: Ok(vec![
            candidate(4242, 12_100, 0, 77),
            candidate(5000, 50, 0, 77),
        ]),
        kmsg: Some(KmsgOom {
            constraint: "CONSTRAINT_MEMCG".into(),
            oom_memcg: Some("/box".into()),
            task_memcg: Some("/box".into()),
            task: "mt-workload".into(),
            pid: 4242,
        }),
        traced_victim: Some(true),
    }
}
