//! Facts about the machine that a report shows or an OOM's arithmetic needs, as they were when
//! they were read: kernel release, gfp flag names, the vm tunables, memory totals.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The machine, read once when recording starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel_release: String,
    /// The kernel's gfp bit enumerators (`___GFP_IO_BIT`, ...) and their values.
    pub gfp_bits: Vec<(String, u32)>,
    /// The vm tunables that decide when and how memory is reclaimed.
    pub tunables: Tunables,
    /// RAM, swap, swappiness and NUMA nodes.
    pub memory: HostMemory,
    /// The memory controller is on cgroup v1.
    pub memcg_v1: bool,
}

/// vm tunables; `None` where the kernel has no such file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tunables {
    pub swappiness: Option<u64>,
    pub min_free_kbytes: Option<u64>,
    pub watermark_scale_factor: Option<u64>,
    pub zone_reclaim_mode: Option<u64>,
    pub overcommit_memory: Option<u64>,
    /// Transparent huge pages: the selected word of `enabled` and `defrag`.
    pub thp_enabled: Option<String>,
    pub thp_defrag: Option<String>,
}

/// Totals and settings, in pages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostMemory {
    pub page_size: u64,
    /// `totalram_pages()` (MemTotal).
    pub ram_pages: u64,
    /// `total_swap_pages` (SwapTotal).
    pub swap_pages: u64,
    /// vm.swappiness.
    pub vm_swappiness: u32,
    /// Nodes with memory, as a mask, and their present pages.
    pub memory_nodes: u64,
    pub node_present_pages: BTreeMap<u32, u64>,
    /// The zones of a node in the kernel's order: the name of each zone index, empty ones too
    /// (`DMA`, `DMA32`, `Normal`, `Movable`, `Device` on x86-64).
    pub zone_names: Vec<String>,
    /// `pageblock_order` (/proc/pagetypeinfo): the unit in which the allocator groups pages
    /// by migrate type. Read once a recording traces (`None` in an OOM kill's snapshot).
    pub pageblock_order: Option<u32>,
}

impl HostMemory {
    /// The name of zone index `zid` (`zone N` when unknown).
    pub fn zone_name(&self, zid: i32) -> String {
        usize::try_from(zid)
            .ok()
            .and_then(|i| self.zone_names.get(i))
            .cloned()
            .unwrap_or_else(|| format!("zone {zid}"))
    }
}

impl HostMemory {
    /// Present pages of the nodes in `mask`.
    pub fn present_pages_of(&self, mask: u64) -> Vec<u64> {
        self.node_present_pages
            .iter()
            .filter(|(node, _)| **node < 64 && mask & (1 << **node) != 0)
            .map(|(_, pages)| *pages)
            .collect()
    }
}
