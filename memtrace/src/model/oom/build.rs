//! Computing an [`OomKill`] from its sample: the domain decision, the domain's totalpages, the
//! badness, and the candidates ranked in that domain.
use memtrace_common::oom::{MemcgLevel, OomCandidateRecord, OomKillEvent, oom_flags};

use super::{
    Aftermath, Badness, Candidates, DomainReport, KernelLog, MAX_CANDIDATES, OomKill, Trigger,
    Victim,
    badness::{self, BadnessInputs, MemcgMax, is_unlimited},
    candidates,
    domain::{self, Constraint, DomainFacts},
    frame_function, kmsg_agrees,
};
use crate::samples::{comm_str, oom::OomSample};

impl OomKill {
    /// Computes the kill's picture from its sample.
    pub fn from_sample(sample: &OomSample) -> Self {
        let e = &sample.event;
        let host = &sample.host;
        let page_kb = host.page_size / 1024;
        let levels = &e.memcg[..(e.memcg_levels as usize).min(e.memcg.len())];
        let frames: Option<Vec<String>> = sample
            .stack
            .as_ref()
            .ok()
            .map(|f| f.iter().map(|s| frame_function(s).to_string()).collect());
        let facts = DomainFacts {
            frames: frames.as_deref(),
            reclaim: sample.recent_reclaim(),
            oom_lock_known: e.flags & oom_flags::OOM_LOCK_KNOWN != 0,
            levels,
            mems_allowed: e.mems_allowed,
            bind_nodes: (e.flags & oom_flags::HAS_MEMPOLICY != 0 && e.mempolicy_mode == 2)
                .then_some(e.mempolicy_nodes),
            memory_nodes: host.memory_nodes,
        };
        let decision = domain::decide(&facts, sample.v1);
        let level = decision
            .memcg_level
            .and_then(|i| levels.get(i).map(|l| (i, l)));
        let (totalpages, rule) = totalpages(sample, decision.constraint, level, levels.len());
        let inputs = victim_inputs(e);
        let points = badness::points(&inputs, totalpages, host.page_size);
        let global = badness::global_totalpages(host.ram_pages, host.swap_pages);
        let bytes = |pages: u64| pages.saturating_mul(host.page_size);
        let victim_record = victim_record(e, levels);
        let list = sample
            .candidates
            .as_ref()
            .map(|records| {
                let memcg = level.map(|(_, l)| l.id);
                candidates::rank(
                    records,
                    memcg,
                    (&victim_record, inputs),
                    totalpages,
                    host.page_size,
                )
            })
            .map_err(Clone::clone);
        let kernel_log = sample.kmsg.clone().map(|line| KernelLog {
            agrees: kmsg_agrees(&line, decision.constraint),
            line,
        });
        Self {
            at_s: e.ts_ns.saturating_sub(sample.start_ns) as f64 / 1e9,
            traced_victim: sample.traced_victim,
            victim: Victim {
                pid: e.victim_pid,
                tgid: e.victim_tgid,
                comm: comm_str(&e.victim_comm),
                uid: e.victim_uid,
                cgroup: sample.level_paths.first().cloned().flatten(),
                total_vm_kb: e.total_vm_pages * page_kb,
                anon_rss_kb: clamp(e.rss_anon_pages) * page_kb,
                file_rss_kb: clamp(e.rss_file_pages) * page_kb,
                shmem_rss_kb: clamp(e.rss_shmem_pages) * page_kb,
                swap_entries: clamp(e.swap_entries),
                pgtables_kb: e.pgtables_bytes / 1024,
                oom_score_adj: e.victim_oom_score_adj,
            },
            trigger: Trigger {
                pid: e.trigger_pid,
                tgid: e.trigger_tgid,
                comm: comm_str(&e.trigger_comm),
                cgroup: sample.trigger_cgroup.clone(),
                is_victim: e.trigger_tgid == e.victim_tgid,
                stack: sample.stack.clone().unwrap_or_default(),
                stack_unavailable: sample.stack.clone().err(),
            },
            domain: DomainReport {
                constraint: decision.constraint,
                cgroup: level.and_then(|(i, _)| sample.level_paths.get(i).cloned().flatten()),
                limit_bytes: level.map(|(_, l)| bytes(l.max_pages)),
                usage_bytes: level.map(|(_, l)| bytes(l.usage_pages)),
                swap_limit_bytes: level
                    .filter(|(_, l)| !is_unlimited(l.swap_max_pages))
                    .map(|(_, l)| bytes(l.swap_max_pages)),
                swap_counter: level.map(|_| if sample.v1 { "memsw" } else { "swap" }.to_string()),
                totalpages,
                totalpages_rule: rule,
                decided_by: decision.decided_by,
                cgroup_found_by: decision.memcg_found_by,
                agreeing: decision.agreeing,
                disagreeing: decision.disagreeing,
            },
            badness: Badness {
                points,
                totalpages,
                score_per_mille: badness::per_mille(points, totalpages),
                proc_oom_score: badness::proc_oom_score(&inputs, global, host.page_size),
                inputs,
            },
            candidates: Candidates {
                snapshot: "bpf task iterator".to_string(),
                taken_ms_after_kill: sample.sampled_ns.saturating_sub(e.ts_ns) as f64 / 1e6,
                in_domain: list.as_ref().map_or(0, Vec::len),
                error: list.as_ref().err().cloned(),
                list: list
                    .map(|mut l| {
                        l.truncate(MAX_CANDIDATES);
                        l
                    })
                    .unwrap_or_default(),
            },
            aftermath: Aftermath {
                freed_kb: clamp(inputs.rss_pages()) * page_kb,
                ..Aftermath::default()
            },
            kernel_log,
            kill_ns: e.ts_ns,
        }
    }
}

/// The domain's totalpages and a sentence saying how they were reckoned.
fn totalpages(
    sample: &OomSample,
    constraint: Constraint,
    level: Option<(usize, &MemcgLevel)>,
    levels: usize,
) -> (u64, String) {
    let host = &sample.host;
    match (constraint, level) {
        (Constraint::Memcg, Some((i, l))) => {
            // The root memcg (the last level of a whole chain) uses vm.swappiness on v1 too.
            let is_root = i + 1 == levels && sample.event.flags & oom_flags::CHAIN_TRUNCATED == 0;
            let swappiness = if sample.v1 && !is_root {
                l.swappiness
            } else {
                host.vm_swappiness
            };
            let max = MemcgMax {
                memory_pages: l.max_pages,
                swap_counter_pages: l.swap_max_pages,
                v1: sample.v1,
                swappiness,
            };
            let pages = badness::memcg_totalpages(&max, host.swap_pages);
            let swap_pages = pages.saturating_sub(l.max_pages);
            let rule = format!(
                "memcg limit {} pages + {swap_pages} pages of swap it may use (swappiness {swappiness}, {} swap pages on the machine)",
                l.max_pages, host.swap_pages
            );
            (pages, rule)
        }
        (Constraint::Cpuset | Constraint::Mempolicy, _) => {
            let mask = if constraint == Constraint::Cpuset {
                sample.event.mems_allowed
            } else {
                sample.event.mempolicy_nodes
            };
            let nodes = host.present_pages_of(mask);
            let pages = badness::nodes_totalpages(&nodes, host.swap_pages);
            (
                pages,
                format!(
                    "swap {} + present pages of nodes {mask:#x}",
                    host.swap_pages
                ),
            )
        }
        _ => {
            let pages = badness::global_totalpages(host.ram_pages, host.swap_pages);
            (
                pages,
                format!("RAM {} + swap {} pages", host.ram_pages, host.swap_pages),
            )
        }
    }
}

fn clamp(pages: i64) -> u64 {
    u64::try_from(pages).unwrap_or(0)
}

fn victim_inputs(e: &OomKillEvent) -> BadnessInputs {
    BadnessInputs {
        rss_file_pages: e.rss_file_pages,
        rss_anon_pages: e.rss_anon_pages,
        rss_shmem_pages: e.rss_shmem_pages,
        swap_entries: e.swap_entries,
        pgtables_bytes: e.pgtables_bytes,
        oom_score_adj: e.victim_oom_score_adj,
    }
}

/// The victim as a candidate record, for the ranking.
fn victim_record(e: &OomKillEvent, levels: &[MemcgLevel]) -> OomCandidateRecord {
    let mut memcg_ids = [0; memtrace_common::oom::OOM_MEMCG_LEVELS];
    for (slot, level) in memcg_ids.iter_mut().zip(levels) {
        *slot = level.id;
    }
    OomCandidateRecord {
        tgid: e.victim_tgid,
        pid: e.victim_pid,
        oom_score_adj: e.victim_oom_score_adj,
        task_flags: 0,
        uid: e.victim_uid,
        _pad: 0,
        comm: e.victim_comm,
        rss_file_pages: e.rss_file_pages,
        rss_anon_pages: e.rss_anon_pages,
        swap_entries: e.swap_entries,
        rss_shmem_pages: e.rss_shmem_pages,
        pgtables_bytes: e.pgtables_bytes,
        mm_flags: 0,
        memcg_ids,
    }
}
