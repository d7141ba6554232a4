//! Struct member offsets the kernel programs read, resolved from the running kernel's BTF by
//! userspace at start-up and handed over in one global, `OFFSETS` (aya has no CO-RE). A member
//! a kernel lacks is `u32::MAX`, which the programs treat as absent.

/// Every struct member offset, in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.tgid`.
    pub task_tgid: u32,
    /// `task_struct.cgroups`.
    pub task_cgroups: u32,
    /// `task_struct.start_time` (CLOCK_MONOTONIC ns) and `task_struct.group_leader`.
    pub task_start_time: u32,
    pub task_group_leader: u32,
    /// `css_set.subsys[memory_cgrp_id]`: `offsetof(subsys) + memory_cgrp_id * 8`.
    pub css_set_memory: u32,
    /// `cgroup_subsys_state.cgroup`.
    pub css_cgroup: u32,
    /// `cgroup.level`.
    pub cgroup_level: u32,
    /// `cgroup.ancestors`.
    pub cgroup_ancestors: u32,
    /// `cgroup.kn`.
    pub cgroup_kn: u32,
    /// `kernfs_node.id`.
    pub kernfs_node_id: u32,
    /// The rest serves the OOM programs (`task_pid`, `task_flags` and `memcg_css` the others too).
    pub task_pid: u32,
    pub task_comm: u32,
    pub task_mm: u32,
    pub task_signal: u32,
    pub task_real_cred: u32,
    pub task_mems_allowed: u32,
    pub task_mempolicy: u32,
    pub mempolicy_mode: u32,
    pub mempolicy_nodes: u32,
    pub signal_oom_score_adj: u32,
    pub cred_uid: u32,
    pub mm_total_vm: u32,
    /// `rss_stat[0].count`, and the distance between two counters.
    pub mm_rss_count: u32,
    pub mm_rss_stride: u32,
    pub mm_pgtables_bytes: u32,
    pub mm_flags: u32,
    pub css_parent: u32,
    pub memcg_css: u32,
    pub memcg_memory: u32,
    pub memcg_swap: u32,
    pub counter_usage: u32,
    pub counter_max: u32,
    /// `memory_events_local[MEMCG_OOM]`.
    pub memcg_oom_events: u32,
    pub memcg_oom_lock: u32,
    pub memcg_swappiness: u32,
    pub task_flags: u32,
    /// `task_struct.sched_info.run_delay` (`u32::MAX` without CONFIG_SCHED_INFO).
    pub task_run_delay: u32,
    /// `task_struct.se.exec_start` and `task_struct.se.sum_exec_runtime`.
    pub task_exec_start: u32,
    pub task_sum_exec_runtime: u32,
    /// `task_struct.se.cfs_rq` (`u32::MAX` without CONFIG_FAIR_GROUP_SCHED), `cfs_rq.rq`,
    /// `rq.clock` and `rq.clock_task`.
    pub task_cfs_rq: u32,
    pub cfs_rq_rq: u32,
    pub rq_clock: u32,
    pub rq_clock_task: u32,
    /// The local node's zones, reached from the current task's memory cgroup
    /// (`mem_cgroup.nodeinfo[nid]->lruvec.pgdat->node_zones[]`): `mem_cgroup.nodeinfo`, the
    /// per-node `lruvec.pgdat`, `pglist_data.node_zones`, `sizeof(struct zone)`, the zone count.
    pub memcg_nodeinfo: u32,
    pub memcg_node_pgdat: u32,
    pub pgdat_zones: u32,
    pub zone_size: u32,
    pub zones: u32,
    /// `zone._watermark[WMARK_MIN]`, `[WMARK_LOW]`, `zone.watermark_boost`,
    /// `zone.managed_pages`, `zone.vm_stat[NR_FREE_PAGES]`.
    pub zone_min: u32,
    pub zone_low: u32,
    pub zone_boost: u32,
    pub zone_managed: u32,
    pub zone_free: u32,
    /// `zone.free_area`, `sizeof(struct free_area)`, `free_area.nr_free`, the orders.
    pub zone_free_area: u32,
    pub free_area_size: u32,
    pub free_area_nr_free: u32,
    pub orders: u32,
    /// `address_space.host`, `inode.i_ino`, `inode.i_sb`, `super_block.s_dev`: the file of a
    /// file fault.
    pub mapping_host: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub sb_dev: u32,
}

impl KernelOffsets {
    /// Offsets no program may use before userspace has set them: every member absent.
    pub const UNSET: Self = Self {
        task_tgid: u32::MAX,
        task_cgroups: u32::MAX,
        task_start_time: u32::MAX,
        task_group_leader: u32::MAX,
        css_set_memory: u32::MAX,
        css_cgroup: u32::MAX,
        cgroup_level: u32::MAX,
        cgroup_ancestors: u32::MAX,
        cgroup_kn: u32::MAX,
        kernfs_node_id: u32::MAX,
        task_pid: u32::MAX,
        task_comm: u32::MAX,
        task_mm: u32::MAX,
        task_signal: u32::MAX,
        task_real_cred: u32::MAX,
        task_mems_allowed: u32::MAX,
        task_mempolicy: u32::MAX,
        mempolicy_mode: u32::MAX,
        mempolicy_nodes: u32::MAX,
        signal_oom_score_adj: u32::MAX,
        cred_uid: u32::MAX,
        mm_total_vm: u32::MAX,
        mm_rss_count: u32::MAX,
        mm_rss_stride: u32::MAX,
        mm_pgtables_bytes: u32::MAX,
        mm_flags: u32::MAX,
        css_parent: u32::MAX,
        memcg_css: u32::MAX,
        memcg_memory: u32::MAX,
        memcg_swap: u32::MAX,
        counter_usage: u32::MAX,
        counter_max: u32::MAX,
        memcg_oom_events: u32::MAX,
        memcg_oom_lock: u32::MAX,
        memcg_swappiness: u32::MAX,
        task_flags: u32::MAX,
        task_run_delay: u32::MAX,
        task_exec_start: u32::MAX,
        task_sum_exec_runtime: u32::MAX,
        task_cfs_rq: u32::MAX,
        cfs_rq_rq: u32::MAX,
        rq_clock: u32::MAX,
        rq_clock_task: u32::MAX,
        memcg_nodeinfo: u32::MAX,
        memcg_node_pgdat: u32::MAX,
        pgdat_zones: u32::MAX,
        zone_size: u32::MAX,
        zones: u32::MAX,
        zone_min: u32::MAX,
        zone_low: u32::MAX,
        zone_boost: u32::MAX,
        zone_managed: u32::MAX,
        zone_free: u32::MAX,
        zone_free_area: u32::MAX,
        free_area_size: u32::MAX,
        free_area_nr_free: u32::MAX,
        orders: u32::MAX,
        mapping_host: u32::MAX,
        inode_ino: u32::MAX,
        inode_sb: u32::MAX,
        sb_dev: u32::MAX,
    };
}

impl Default for KernelOffsets {
    fn default() -> Self {
        Self::UNSET
    }
}

#[cfg(feature = "user")]
// SAFETY: `repr(C)` and only `u32` fields: no padding, valid for any bytes.
unsafe impl aya::Pod for KernelOffsets {}
