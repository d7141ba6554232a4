//! The struct members the OOM programs read, resolved from the running kernel's BTF.
use btf_rs::{Btf, Type};
use memtrace_common::oom::OomOffsets;

use crate::{
    collect::kernel::{enum_value, member_offset},
    error::Error,
};

/// Every offset of [`OomOffsets`]; members a kernel may lack (NUMA, cgroup v1) become
/// `u32::MAX`, which the programs treat as absent.
pub fn resolve(btf: &Btf) -> Result<OomOffsets, Error> {
    let m = |s: &str, f: &str| member_offset(btf, s, f);
    let optional = |s: &str, f: &str| member_offset(btf, s, f).unwrap_or(u32::MAX);
    let oom_event = enum_value(btf, "memcg_memory_event", "MEMCG_OOM")?;
    // memsw (v1) and swap (v2) share a union: either name gives the same counter.
    let swap = m("mem_cgroup", "memsw").or_else(|_| m("mem_cgroup", "swap"))?;
    Ok(OomOffsets {
        task_pid: m("task_struct", "pid")?,
        task_comm: m("task_struct", "comm")?,
        task_mm: m("task_struct", "mm")?,
        task_signal: m("task_struct", "signal")?,
        task_real_cred: m("task_struct", "real_cred")?,
        task_flags: m("task_struct", "flags")?,
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
        memcg_css: m("mem_cgroup", "css")?,
        memcg_memory: m("mem_cgroup", "memory")?,
        memcg_swap: swap,
        counter_usage: m("page_counter", "usage")?,
        counter_max: m("page_counter", "max")?,
        memcg_oom_events: m("mem_cgroup", "memory_events_local")? + oom_event * 8,
        memcg_oom_lock: optional("mem_cgroup", "oom_lock"),
        memcg_swappiness: m("mem_cgroup", "swappiness")?,
    })
}

/// `sizeof(struct percpu_counter)`, after checking that `mm->rss_stat` is an array of them:
/// the programs read `rss_stat[i].count` the way `get_mm_counter()` does.
fn rss_counter_size(btf: &Btf) -> Result<u32, Error> {
    let unexpected = |reason: &str| Error::Btf {
        what: "struct mm_struct.rss_stat".into(),
        reason: reason.into(),
    };
    let structs = btf.resolve_types_by_name("mm_struct").unwrap_or_default();
    let member_type = structs.iter().find_map(|ty| match ty {
        Type::Struct(s) => member_type(btf, &s.members, "rss_stat"),
        _ => None,
    });
    let Some(Type::Array(array)) = member_type else {
        return Err(unexpected("not an array"));
    };
    match btf.resolve_chained_type(&array) {
        Ok(Type::Struct(elem))
            if btf.resolve_name(&elem).ok().as_deref() == Some("percpu_counter") =>
        {
            u32::try_from(elem.size()).map_err(|_| unexpected("oversized element"))
        }
        _ => Err(unexpected("not an array of struct percpu_counter")),
    }
}

/// The type of member `name`, looking through anonymous structs and unions.
fn member_type(btf: &Btf, members: &[btf_rs::Member], name: &str) -> Option<Type> {
    members.iter().find_map(|member| {
        let ty = btf.resolve_chained_type(member).ok()?;
        match btf.resolve_name(member).unwrap_or_default().as_str() {
            found if found == name => Some(ty),
            "" => match &ty {
                Type::Struct(inner) | Type::Union(inner) => member_type(btf, &inner.members, name),
                _ => None,
            },
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs only a readable /sys/kernel/btf/vmlinux, like memtrace itself.
    #[test]
    fn resolves_on_the_running_kernel() {
        let btf = Btf::from_file(crate::collect::kernel::VMLINUX_BTF).expect("btf");
        let offsets = resolve(&btf).expect("offsets");
        assert!(offsets.task_pid > 0 && offsets.mm_rss_stride >= 8);
        assert_ne!(offsets.memcg_swap, offsets.memcg_memory);
    }
}
