//! Background memory activity: swap traffic by reclaiming task and by owning memory cgroup,
//! and kswapd's work per NUMA node.
use std::collections::HashMap;

use memtrace_common::{KswapdEvent, SwapEvent, kswapd_op, swap_dir};

use super::timeline::Timeline;
use crate::decode::comm_str;

/// Pages moved by one task or for one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SwapCounts {
    pub out_pages: u64,
    pub in_pages: u64,
}

impl SwapCounts {
    fn add(&mut self, dir: u32, pages: u64) {
        if dir == swap_dir::OUT {
            self.out_pages += pages;
        } else {
            self.in_pages += pages;
        }
    }
}

/// Swap traffic so far.
#[derive(Clone, Debug, Default)]
pub struct SwapTraffic {
    pub total: SwapCounts,
    /// By the task doing the I/O (the reclaimer for swap-outs): pid -> (comm, counts).
    pub by_task: HashMap<u32, (String, SwapCounts)>,
    /// By the memory cgroup owning the pages (its directory's inode).
    pub by_memcg: HashMap<u64, SwapCounts>,
}

impl SwapTraffic {
    /// Adds one swap record.
    pub fn add(&mut self, event: &SwapEvent) {
        let pages = u64::from(event.pages);
        self.total.add(event.dir, pages);
        let task = self
            .by_task
            .entry(event.tgid)
            .or_insert_with(|| (comm_str(&event.comm), SwapCounts::default()));
        task.1.add(event.dir, pages);
        self.by_memcg
            .entry(event.memcg_id)
            .or_default()
            .add(event.dir, pages);
    }
}

/// kswapd of one node.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct KswapdNode {
    pub nid: u32,
    /// Times kswapd started working.
    pub runs: u64,
    /// Time it worked (wake to sleep).
    pub busy_ns: u64,
    /// Who woke it: (pid, comm, order) -> times.
    #[serde(skip)]
    pub woken_by: HashMap<(u32, String, i32), u64>,
    /// Start of the current run, if it is working.
    #[serde(skip)]
    pub awake_since_ns: Option<u64>,
}

/// kswapd of every node.
#[derive(Clone, Debug, Default)]
pub struct Kswapd {
    pub nodes: HashMap<u32, KswapdNode>,
}

impl Kswapd {
    /// Adds one kswapd record; busy time goes into the timeline as it completes.
    pub fn add(&mut self, event: &KswapdEvent, timeline: &mut Timeline) {
        let node = self.nodes.entry(event.nid).or_insert_with(|| KswapdNode {
            nid: event.nid,
            ..KswapdNode::default()
        });
        match event.op {
            kswapd_op::WAKE => {
                node.runs += 1;
                node.awake_since_ns.get_or_insert(event.ts_ns);
            }
            kswapd_op::SLEEP => {
                if let Some(since) = node.awake_since_ns.take() {
                    let len = event.ts_ns.saturating_sub(since);
                    node.busy_ns += len;
                    timeline.add_kswapd_busy(event.nid, since, len);
                }
            }
            _ => {
                *node
                    .woken_by
                    .entry((event.tgid, comm_str(&event.comm), event.order))
                    .or_default() += 1;
            }
        }
    }

    /// Accounts runs still going at `now_ns` up to now (called when an interval closes).
    pub fn settle(&mut self, now_ns: u64, timeline: &mut Timeline) {
        for node in self.nodes.values_mut() {
            if let Some(since) = node.awake_since_ns
                && now_ns > since
            {
                node.busy_ns += now_ns - since;
                timeline.add_kswapd_busy(node.nid, since, now_ns - since);
                node.awake_since_ns = Some(now_ns);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use memtrace_common::EventKind;

    use super::*;

    fn kswapd(op: u32, ts_ns: u64) -> KswapdEvent {
        KswapdEvent {
            kind: EventKind::Kswapd as u32,
            op,
            nid: 0,
            order: 0,
            ts_ns,
            tgid: 9,
            gfp_flags: 0,
            comm: [0; 16],
        }
    }

    #[test]
    fn kswapd_busy_time_runs_from_wake_to_sleep_across_settles() {
        let mut timeline = Timeline::new(0);
        let mut k = Kswapd::default();
        k.add(&kswapd(kswapd_op::WAKE, 100), &mut timeline);
        k.settle(300, &mut timeline);
        timeline.close(300);
        k.add(&kswapd(kswapd_op::SLEEP, 450), &mut timeline);
        k.add(&kswapd(kswapd_op::WOKEN_BY, 460), &mut timeline);
        timeline.close(500);
        let node = &k.nodes[&0];
        assert_eq!((node.runs, node.busy_ns), (1, 350));
        let busy: Vec<u64> = timeline
            .closed()
            .iter()
            .map(|i| i.kswapd_busy_ns[&0])
            .collect();
        assert_eq!(busy, vec![200, 150]);
        assert_eq!(node.woken_by.values().sum::<u64>(), 1);
    }

    #[test]
    fn swap_traffic_by_task_and_memcg() {
        let mut s = SwapTraffic::default();
        let ev = |dir, tgid, memcg_id| SwapEvent {
            kind: EventKind::Swap as u32,
            dir,
            tgid,
            pages: 1,
            memcg_id,
            ts_ns: 0,
            comm: [0; 16],
        };
        s.add(&ev(swap_dir::OUT, 1, 50));
        s.add(&ev(swap_dir::OUT, 2, 50));
        s.add(&ev(swap_dir::IN, 2, 50));
        assert_eq!(
            s.total,
            SwapCounts {
                out_pages: 2,
                in_pages: 1
            }
        );
        assert_eq!(
            s.by_memcg[&50],
            SwapCounts {
                out_pages: 2,
                in_pages: 1
            }
        );
        assert_eq!(
            s.by_task[&2].1,
            SwapCounts {
                out_pages: 1,
                in_pages: 1
            }
        );
    }
}
