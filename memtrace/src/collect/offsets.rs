//! Every struct member the kernel programs read, resolved from the running kernel's BTF into
//! the one `KernelOffsets` they get.
use memtrace_common::offsets::KernelOffsets;

use super::{
    btf::{Btf, kind},
    kernel::{enum_value, find_member, member_offset},
};
use crate::error::Error;

/// The offsets of the fault, filter and swap programs: without them memtrace cannot run.
pub fn resolve_core(btf: &Btf, offsets: &mut KernelOffsets) -> Result<(), Error> {
    let m = |s: &str, f: &str| member_offset(btf, s, f);
    let memory_cgrp_id = enum_value(btf, "cgroup_subsys_id", "memory_cgrp_id")?;
    offsets.task_tgid = m("task_struct", "tgid")?;
    offsets.task_pid = m("task_struct", "pid")?;
    offsets.task_flags = m("task_struct", "flags")?;
    offsets.memcg_css = m("mem_cgroup", "css")?;
    offsets.task_cgroups = m("task_struct", "cgroups")?;
    offsets.task_comm = m("task_struct", "comm")?;
    offsets.task_start_time = m("task_struct", "start_time")?;
    offsets.task_group_leader = m("task_struct", "group_leader")?;
    offsets.css_set_memory = m("css_set", "subsys")? + memory_cgrp_id * 8;
    offsets.css_cgroup = m("cgroup_subsys_state", "cgroup")?;
    offsets.cgroup_level = m("cgroup", "level")?;
    offsets.cgroup_ancestors = m("cgroup", "ancestors")?;
    offsets.cgroup_kn = m("cgroup", "kn")?;
    offsets.kernfs_node_id = m("kernfs_node", "id")?;
    // Without CONFIG_SCHED_INFO a fault's time off the CPU is all counted blocked.
    offsets.task_run_delay = (m("task_struct", "sched_info").ok())
        .zip(m("sched_info", "run_delay").ok())
        .map_or(u32::MAX, |(info, delay)| info + delay);
    let se = m("task_struct", "se")?;
    offsets.task_exec_start = se + m("sched_entity", "exec_start")?;
    offsets.task_sum_exec_runtime = se + m("sched_entity", "sum_exec_runtime")?;
    // Without CONFIG_FAIR_GROUP_SCHED the run queue is out of reach: a fault's time off the
    // CPU is then read in the task clock, which leaves out time stolen by a hypervisor.
    if let (Ok(cfs_rq), Ok(rq)) = (m("sched_entity", "cfs_rq"), m("cfs_rq", "rq")) {
        offsets.task_cfs_rq = se + cfs_rq;
        offsets.cfs_rq_rq = rq;
        offsets.rq_clock = m("rq", "clock")?;
        offsets.rq_clock_task = m("rq", "clock_task")?;
    }
    Ok(())
}

/// The offsets only the OOM programs read; members a kernel may lack (NUMA, cgroup v1) become
/// `u32::MAX`, which the programs treat as absent. On an error the caller leaves the OOM hooks
/// out.
pub fn resolve_oom(btf: &Btf, offsets: &mut KernelOffsets) -> Result<(), Error> {
    let m = |s: &str, f: &str| member_offset(btf, s, f);
    let optional = |s: &str, f: &str| member_offset(btf, s, f).unwrap_or(u32::MAX);
    let oom_event = enum_value(btf, "memcg_memory_event", "MEMCG_OOM")?;
    // memsw (v1) and swap (v2) share a union: either name gives the same counter.
    let swap = m("mem_cgroup", "memsw").or_else(|_| m("mem_cgroup", "swap"))?;
    *offsets = KernelOffsets {
        task_mm: m("task_struct", "mm")?,
        task_signal: m("task_struct", "signal")?,
        task_real_cred: m("task_struct", "real_cred")?,
        task_mems_allowed: optional("task_struct", "mems_allowed"),
        task_mempolicy: optional("task_struct", "mempolicy"),
        mempolicy_mode: optional("mempolicy", "mode"),
        mempolicy_nodes: optional("mempolicy", "nodes"),
        signal_oom_score_adj: m("signal_struct", "oom_score_adj")?,
        cred_uid: m("cred", "uid")?,
        mm_total_vm: m("mm_struct", "total_vm")?,
        mm_rss_count: m("mm_struct", "rss_stat")? + m("percpu_counter", "count")?,
        mm_rss_stride: rss_counter_size(btf)?,
        mm_pgtables_bytes: m("mm_struct", "pgtables_bytes")?,
        mm_flags: m("mm_struct", "flags")?,
        css_parent: m("cgroup_subsys_state", "parent")?,
        memcg_memory: m("mem_cgroup", "memory")?,
        memcg_swap: swap,
        counter_usage: m("page_counter", "usage")?,
        counter_max: m("page_counter", "max")?,
        memcg_oom_events: m("mem_cgroup", "memory_events_local")? + oom_event * 8,
        memcg_oom_lock: optional("mem_cgroup", "oom_lock"),
        memcg_swappiness: m("mem_cgroup", "swappiness")?,
        ..*offsets
    };
    Ok(())
}

/// The offsets that reach the local node's zones from a memory cgroup, read as a stall begins
/// (`memtrace_common::zone_state`). On an error the caller leaves them unset: stalls then carry
/// no zone state, and the report falls back on the interval's /proc/zoneinfo readings.
pub fn resolve_zones(btf: &Btf, offsets: &mut KernelOffsets) -> Result<(), Error> {
    let m = |s: &str, f: &str| member_offset(btf, s, f);
    let wmark = |name: &str| enum_value(btf, "zone_watermarks", name);
    let free = enum_value(btf, "zone_stat_item", "NR_FREE_PAGES")?;
    let zones = enum_value(btf, "zone_type", "__MAX_NR_ZONES")?;
    let size = |name: &str| {
        btf.find(kind::STRUCT, name)
            .first()
            .map(|&id| btf.size(id))
            .filter(|&size| size > 0)
            .ok_or_else(|| Error::Btf {
                what: format!("struct {name}"),
                reason: "not found in the kernel's BTF".into(),
            })
    };
    let orders = btf
        .find(kind::STRUCT, "zone")
        .into_iter()
        .find_map(|id| find_member(btf, id, "free_area", 0))
        .and_then(|(_, type_id)| btf.array_len(btf.resolve(type_id)))
        .ok_or_else(|| Error::Btf {
            what: "struct zone.free_area".into(),
            reason: "not an array".into(),
        })?;
    let watermark = m("zone", "_watermark")?;
    *offsets = KernelOffsets {
        memcg_nodeinfo: m("mem_cgroup", "nodeinfo")?,
        memcg_node_pgdat: m("mem_cgroup_per_node", "lruvec")? + m("lruvec", "pgdat")?,
        pgdat_zones: m("pglist_data", "node_zones")?,
        zone_size: size("zone")?,
        zones: zones.min(memtrace_common::zone_state::MAX_ZONES),
        zone_min: watermark + wmark("WMARK_MIN")? * 8,
        zone_low: watermark + wmark("WMARK_LOW")? * 8,
        zone_boost: m("zone", "watermark_boost")?,
        zone_managed: m("zone", "managed_pages")?,
        zone_free: m("zone", "vm_stat")? + free * 8,
        zone_free_area: m("zone", "free_area")?,
        free_area_size: size("free_area")?,
        free_area_nr_free: m("free_area", "nr_free")?,
        orders,
        ..*offsets
    };
    Ok(())
}

/// The offsets that name the file of a file fault (`mm_filemap_fault`). On an error the
/// caller leaves them unset: faults then carry no file.
pub fn resolve_files(btf: &Btf, offsets: &mut KernelOffsets) -> Result<(), Error> {
    let m = |s: &str, f: &str| member_offset(btf, s, f);
    *offsets = KernelOffsets {
        mapping_host: m("address_space", "host")?,
        inode_ino: m("inode", "i_ino")?,
        inode_sb: m("inode", "i_sb")?,
        sb_dev: m("super_block", "s_dev")?,
        ..*offsets
    };
    Ok(())
}

/// `sizeof(struct percpu_counter)`, after checking that `mm->rss_stat` is an array of them:
/// the programs read `rss_stat[i].count` the way `get_mm_counter()` does.
fn rss_counter_size(btf: &Btf) -> Result<u32, Error> {
    let unexpected = |reason: &str| Error::Btf {
        what: "struct mm_struct.rss_stat".into(),
        reason: reason.into(),
    };
    let rss_stat = btf
        .find(kind::STRUCT, "mm_struct")
        .into_iter()
        .find_map(|id| find_member(btf, id, "rss_stat", 0))
        .map(|(_, type_id)| btf.resolve(type_id));
    let element = rss_stat
        .and_then(|array| btf.array_element(array))
        .map(|elem| btf.resolve(elem))
        .ok_or_else(|| unexpected("not an array"))?;
    if btf.kind(element) != kind::STRUCT || btf.name(element) != "percpu_counter" {
        return Err(unexpected("not an array of struct percpu_counter"));
    }
    Ok(btf.size(element))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs only a readable /sys/kernel/btf/vmlinux, like memtrace itself.
    #[test]
    fn resolves_on_the_running_kernel() {
        let btf = Btf::from_file(crate::collect::kernel::VMLINUX_BTF).expect("btf");
        let mut offsets = KernelOffsets::UNSET;
        resolve_core(&btf, &mut offsets).expect("core offsets");
        resolve_oom(&btf, &mut offsets).expect("OOM offsets");
        assert!(offsets.task_pid > 0 && offsets.mm_rss_stride >= 8);
        assert!(offsets.task_tgid > 0 && offsets.cgroup_kn > 0);
        assert!(offsets.task_exec_start > 0 && offsets.task_exec_start != u32::MAX);
        assert_ne!(offsets.task_sum_exec_runtime, offsets.task_exec_start);
        assert!(offsets.rq_clock != u32::MAX && offsets.rq_clock_task != u32::MAX);
        assert_ne!(offsets.memcg_swap, offsets.memcg_memory);
        resolve_zones(&btf, &mut offsets).expect("zone offsets");
        // x86-64: 11 orders (0..=10), at most 5 zones, and `min` before `low`.
        assert_eq!(offsets.orders, 11);
        assert!((2..=5).contains(&offsets.zones));
        assert_eq!(offsets.zone_low, offsets.zone_min + 8);
        assert!(offsets.zone_size > offsets.zone_free_area + 11 * offsets.free_area_size);
    }
}
