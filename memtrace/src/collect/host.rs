//! Reads the machine facts a recording keeps: kernel release, the vm tunables, and
//! RAM, swap and NUMA totals (also read again at each OOM kill, when they matter).
use super::{
    cgroups::MemoryHierarchy,
    procfs::{
        meminfo_kb, parse_node_list, parse_pageblock_order, parse_zone_names,
        parse_zoneinfo_present, selected_choice,
    },
};
use crate::samples::host::{HostFacts, HostMemory, Tunables};

/// Reads a whole file as text; empty when it cannot be read.
fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A number in a /proc/sys file, `None` where the kernel has no such file.
fn sysctl(path: &str) -> Option<u64> {
    read(path).trim().parse().ok()
}

/// RAM, swap, swappiness and NUMA nodes now; a missing file leaves its field at zero. Not the
/// pageblock order (see [`pageblock_order`]).
pub fn host_memory() -> HostMemory {
    // SAFETY: sysconf has no preconditions.
    let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let meminfo = read("/proc/meminfo");
    let kb = |key| meminfo_kb(&meminfo, key).unwrap_or(0);
    let nodes = std::fs::read_to_string("/sys/devices/system/node/has_memory")
        .map(|text| parse_node_list(&text))
        .unwrap_or(1);
    let zoneinfo = read("/proc/zoneinfo");
    HostMemory {
        page_size,
        ram_pages: kb("MemTotal") * 1024 / page_size,
        swap_pages: kb("SwapTotal") * 1024 / page_size,
        vm_swappiness: sysctl("/proc/sys/vm/swappiness")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(60),
        memory_nodes: nodes,
        node_present_pages: parse_zoneinfo_present(&zoneinfo),
        zone_names: parse_zone_names(&zoneinfo),
        // Read once a recording traces (`pageblock_order`): too slow for start-up.
        pageblock_order: None,
    }
}

/// `pageblock_order`, from /proc/pagetypeinfo. Slow: the kernel counts the migrate type of
/// every pageblock of the machine to write that file (10–17 ms of system time on a 24 GiB
/// machine), so a session reads it once tracing has started, not on start-up's path.
pub fn pageblock_order() -> Option<u32> {
    parse_pageblock_order(&read("/proc/pagetypeinfo"))
}

/// The vm tunables now.
pub fn tunables() -> Tunables {
    let thp = |file: &str| {
        selected_choice(&read(&format!(
            "/sys/kernel/mm/transparent_hugepage/{file}"
        )))
    };
    Tunables {
        swappiness: sysctl("/proc/sys/vm/swappiness"),
        min_free_kbytes: sysctl("/proc/sys/vm/min_free_kbytes"),
        watermark_scale_factor: sysctl("/proc/sys/vm/watermark_scale_factor"),
        zone_reclaim_mode: sysctl("/proc/sys/vm/zone_reclaim_mode"),
        overcommit_memory: sysctl("/proc/sys/vm/overcommit_memory"),
        thp_enabled: thp("enabled"),
        thp_defrag: thp("defrag"),
    }
}

/// Everything a recording's header keeps about the machine; `gfp_bits` come from its BTF.
pub fn host_facts(gfp_bits: &[(String, u32)]) -> HostFacts {
    HostFacts {
        kernel_release: read("/proc/sys/kernel/osrelease").trim().to_string(),
        gfp_bits: gfp_bits.to_vec(),
        tunables: tunables(),
        memory: host_memory(),
        memcg_v1: MemoryHierarchy::read().is_some_and(|h| h.v1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads only world-readable files, like every user of memtrace.
    #[test]
    fn this_machine_has_a_kernel_memory_and_tunables() {
        let facts = host_facts(&[("___GFP_IO_BIT".into(), 6)]);
        assert!(!facts.kernel_release.is_empty());
        assert!(facts.memory.ram_pages > 0 && facts.memory.page_size >= 4096);
        assert!(facts.tunables.swappiness.is_some());
        assert!(facts.tunables.min_free_kbytes.is_some());
        assert_eq!(facts.memory.pageblock_order, None);
        assert!(pageblock_order().is_some_and(|order| (1..=12).contains(&order)));
    }
}
