//! Background memory activity folded over the recording: swap traffic by reclaiming task and
//! by owning memory cgroup, and kswapd's work per NUMA node.
use std::collections::HashMap;

use super::timeline::Timeline;
use crate::samples::{IntervalSample, KswapdSample};

/// Pages moved by one task or for one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SwapCounts {
    pub out_pages: u64,
    pub in_pages: u64,
}

impl SwapCounts {
    fn add(&mut self, out_pages: u64, in_pages: u64) {
        self.out_pages += out_pages;
        self.in_pages += in_pages;
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
    /// Adds one interval's traffic. The total is the tasks' sum: every page has one doer.
    pub fn apply(&mut self, sample: &IntervalSample) {
        for task in &sample.swap_by_task {
            self.total.add(task.out_pages, task.in_pages);
            self.by_task
                .entry(task.pid)
                .or_insert_with(|| (task.comm.clone(), SwapCounts::default()))
                .1
                .add(task.out_pages, task.in_pages);
        }
        for memcg in &sample.swap_by_memcg {
            self.by_memcg
                .entry(memcg.memcg_id)
                .or_default()
                .add(memcg.out_pages, memcg.in_pages);
        }
    }
}

/// kswapd of one node.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct KswapdNode {
    pub nid: u32,
    /// Times kswapd started working.
    pub runs: u64,
    /// Wall time it was awake (wake to sleep): not busy, it includes naps and CPU waits.
    pub awake_ns: u64,
    /// CPU time; `None` when not measured (older recordings).
    pub cpu_ns: Option<u64>,
    /// Who woke it: (pid, comm, order, zone index) -> times.
    #[serde(skip)]
    pub woken_by: HashMap<(u32, String, i32, Option<i32>), u64>,
    /// Its wakes by (zone index, order).
    #[serde(skip)]
    pub wake_zones: HashMap<(i32, i32), u64>,
}

/// kswapd of every node.
#[derive(Clone, Debug, Default)]
pub struct Kswapd {
    pub nodes: HashMap<u32, KswapdNode>,
}

impl Kswapd {
    /// Adds one interval (`index`) of kswapd activity, its times to the timeline too.
    pub fn apply(&mut self, index: u64, samples: &[KswapdSample], timeline: &mut Timeline) {
        for sample in samples {
            let node = self.nodes.entry(sample.nid).or_insert_with(|| KswapdNode {
                nid: sample.nid,
                ..KswapdNode::default()
            });
            node.runs += sample.wakes;
            for &(index, ns) in &sample.awake_ns {
                node.awake_ns += ns;
                timeline.add_kswapd(sample.nid, index, ns);
            }
            if let Some(ns) = sample.cpu_ns {
                *node.cpu_ns.get_or_insert(0) += ns;
                timeline.add_kswapd_cpu(index, ns);
            }
            for waker in &sample.woken_by {
                *node
                    .woken_by
                    .entry((waker.pid, waker.comm.clone(), waker.order, waker.zid))
                    .or_default() += waker.count;
            }
            for wake in &sample.wake_zones {
                *node.wake_zones.entry((wake.zid, wake.order)).or_default() += wake.count;
            }
        }
    }
}
