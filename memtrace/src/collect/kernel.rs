//! Facts about the running kernel read from its BTF at start-up: enum values and struct member
//! offsets that the kernel programs need (aya has no CO-RE relocations).
use btf_rs::{Btf, Type};

use crate::error::Error;

/// Where the kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Everything resolved from BTF, ready to be set as globals of the kernel programs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelFacts {
    /// `enum vm_event_item` values.
    pub vm_pgfault: u32,
    pub vm_pgmajfault: u32,
    pub vm_pswpin: u32,
    /// `ZSWPIN`, absent without CONFIG_ZSWAP (then `u32::MAX`, which matches nothing).
    pub vm_zswpin: u32,
    pub vm_pswpout: u32,
    /// Byte offsets of struct members (see the kernel programs' `kernel.rs`).
    pub off_task_tgid: u32,
    pub off_task_pid: u32,
    pub off_task_flags: u32,
    pub off_memcg_css: u32,
    pub off_task_cgroups: u32,
    pub off_css_set_memory: u32,
    pub off_css_cgroup: u32,
    pub off_cgroup_level: u32,
    pub off_cgroup_ancestors: u32,
    pub off_cgroup_kn: u32,
    pub off_kernfs_node_id: u32,
    /// Whether the kernel has the `memcg:count_memcg_events` tracepoint.
    pub has_count_memcg_events: bool,
    /// The gfp bit enumerators (`___GFP_IO_BIT`, ...) and their values.
    pub gfp_bits: Vec<(String, u32)>,
    /// What the OOM programs read; `None` (with a warning) leaves OOM kills untraced.
    pub oom: Option<memtrace_common::oom::OomOffsets>,
}

impl KernelFacts {
    /// Reads the facts from the running kernel's BTF.
    pub fn from_running_kernel() -> Result<Self, Error> {
        let btf = Btf::from_file(VMLINUX_BTF).map_err(|source| Error::Btf {
            what: VMLINUX_BTF.to_string(),
            reason: source.to_string(),
        })?;
        let facts = Self::from_btf(&btf);
        drop(btf);
        // The parse's tens of megabytes are free now; return them before aya parses the BTF
        // again for the loader, so the two parses do not add up in memtrace's peak RSS.
        facts
    }

    /// Reads the facts from a parsed BTF.
    pub fn from_btf(btf: &Btf) -> Result<Self, Error> {
        let memory_cgrp_id = enum_value(btf, "cgroup_subsys_id", "memory_cgrp_id")?;
        Ok(Self {
            vm_pgfault: enum_value(btf, "vm_event_item", "PGFAULT")?,
            vm_pgmajfault: enum_value(btf, "vm_event_item", "PGMAJFAULT")?,
            vm_pswpin: enum_value(btf, "vm_event_item", "PSWPIN")?,
            vm_zswpin: enum_value(btf, "vm_event_item", "ZSWPIN").unwrap_or(u32::MAX),
            vm_pswpout: enum_value(btf, "vm_event_item", "PSWPOUT")?,
            off_task_tgid: member_offset(btf, "task_struct", "tgid")?,
            off_task_pid: member_offset(btf, "task_struct", "pid")?,
            off_task_flags: member_offset(btf, "task_struct", "flags")?,
            off_memcg_css: member_offset(btf, "mem_cgroup", "css")?,
            off_task_cgroups: member_offset(btf, "task_struct", "cgroups")?,
            off_css_set_memory: member_offset(btf, "css_set", "subsys")? + memory_cgrp_id * 8,
            off_css_cgroup: member_offset(btf, "cgroup_subsys_state", "cgroup")?,
            off_cgroup_level: member_offset(btf, "cgroup", "level")?,
            off_cgroup_ancestors: member_offset(btf, "cgroup", "ancestors")?,
            off_cgroup_kn: member_offset(btf, "cgroup", "kn")?,
            off_kernfs_node_id: member_offset(btf, "kernfs_node", "id")?,
            gfp_bits: enum_members_with_prefix(btf, "___GFP_"),
            has_count_memcg_events: btf
                .resolve_ids_by_name("btf_trace_count_memcg_events")
                .is_ok(),
            oom: crate::oom::offsets::resolve(btf)
                .map_err(|e| log::warn!("OOM kills will not be traced: {e}"))
                .ok(),
        })
    }
}

fn missing(what: String) -> Error {
    Error::Btf {
        what,
        reason: "not found in the kernel's BTF".to_string(),
    }
}

/// The value of `name` in `enum enum_name`.
pub(crate) fn enum_value(btf: &Btf, enum_name: &str, name: &str) -> Result<u32, Error> {
    let types = btf.resolve_types_by_name(enum_name).unwrap_or_default();
    for ty in types {
        if let Type::Enum(e) = ty {
            for member in &e.members {
                if btf.resolve_name(member).ok().as_deref() == Some(name) {
                    return Ok(member.val());
                }
            }
        }
    }
    Err(missing(format!("enum {enum_name}::{name}")))
}

/// Every enumerator of any enum whose name starts with `prefix`, with its value (the gfp bit
/// enum is anonymous, so it is found by its members).
fn enum_members_with_prefix(btf: &Btf, prefix: &str) -> Vec<(String, u32)> {
    let marker = format!("{prefix}IO_BIT");
    // Enumerator names are not indexed, so walk the types; this enum comes early (id ~300).
    for id in 1..200_000 {
        match btf.resolve_type_by_id(id) {
            Ok(Type::Enum(e))
                if e.members
                    .iter()
                    .any(|m| btf.resolve_name(m).ok().as_deref() == Some(marker.as_str())) =>
            {
                return e
                    .members
                    .iter()
                    .filter_map(|m| Some((btf.resolve_name(m).ok()?, m.val())))
                    .filter(|(name, _)| name.starts_with(prefix))
                    .collect();
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Vec::new()
}

/// The byte offset of `member` in `struct struct_name`, looking through anonymous members.
pub(crate) fn member_offset(btf: &Btf, struct_name: &str, member: &str) -> Result<u32, Error> {
    let types = btf.resolve_types_by_name(struct_name).unwrap_or_default();
    for ty in types {
        if let Type::Struct(s) = ty
            && let Some(bits) = find_member(btf, &s.members, member, 0)
        {
            return Ok(bits / 8);
        }
    }
    Err(missing(format!("struct {struct_name}.{member}")))
}

fn find_member(btf: &Btf, members: &[btf_rs::Member], name: &str, base_bits: u32) -> Option<u32> {
    for member in members {
        let member_name = btf.resolve_name(member).unwrap_or_default();
        let bits = base_bits + member.bit_offset();
        if member_name == name {
            return Some(bits);
        }
        if member_name.is_empty()
            && let Ok(Type::Struct(inner) | Type::Union(inner)) = btf.resolve_chained_type(member)
            && let Some(found) = find_member(btf, &inner.members, name, bits)
        {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs only a readable /sys/kernel/btf/vmlinux (memtrace's own requirement), no root.
    #[test]
    fn resolves_the_running_kernels_facts() {
        let facts = KernelFacts::from_running_kernel().expect("facts");
        assert_ne!(facts.vm_pgfault, facts.vm_pgmajfault);
        assert!(facts.off_task_tgid > 0 && facts.off_cgroup_kn > 0);
        let gfp = crate::report::gfp::GfpNames::from_enum(
            facts.gfp_bits.iter().map(|(n, b)| (n.as_str(), *b)),
        );
        assert_eq!(
            gfp.decode(0xcc0),
            "GFP_KERNEL",
            "gfp bits from BTF: {:?}",
            facts.gfp_bits
        );
    }
}
