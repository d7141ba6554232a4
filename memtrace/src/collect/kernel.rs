//! Facts about the running kernel read from its BTF at start-up: enum values and struct member
//! offsets that the kernel programs need (aya has no CO-RE relocations).
use memtrace_common::offsets::KernelOffsets;

use super::btf::{Btf, TypeAt, kind};
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
    /// `THP_FAULT_ALLOC`, absent without transparent huge pages (then `u32::MAX`).
    pub vm_thp_fault_alloc: u32,
    /// Byte offsets of every struct member the kernel programs read.
    pub offsets: KernelOffsets,
    /// Whether the kernel has the `memcg:count_memcg_events` tracepoint.
    pub has_count_memcg_events: bool,
    /// The gfp bit enumerators (`___GFP_IO_BIT`, ...) and their values.
    pub gfp_bits: Vec<(String, u32)>,
    /// The OOM programs' offsets were found (else, with a warning, OOM kills go untraced).
    pub oom_offsets: bool,
    /// The types the programs attach by (`loader::attach_types`) that the kernel has, with
    /// their ids: attaching looks no further (see `btf::id_index`).
    pub attach_types: Vec<TypeAt>,
}

impl KernelFacts {
    /// Reads the facts from the running kernel's BTF.
    pub fn from_running_kernel() -> Result<Self, Error> {
        let started = std::time::Instant::now();
        let facts = Self::from_btf(&Btf::from_file(VMLINUX_BTF)?);
        log::debug!(
            "start-up: facts read from the kernel's BTF {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        facts
    }

    /// Reads the facts from a parsed BTF.
    pub fn from_btf(btf: &Btf) -> Result<Self, Error> {
        let mut offsets = KernelOffsets::UNSET;
        super::offsets::resolve_core(btf, &mut offsets)?;
        let oom_offsets = super::offsets::resolve_oom(btf, &mut offsets)
            .map_err(|e| log::warn!("OOM kills will not be traced: {e}"))
            .is_ok();
        if let Err(e) = super::offsets::resolve_zones(btf, &mut offsets) {
            log::warn!("stalls will not carry the zones' state as they began: {e}");
        }
        if let Err(e) = super::offsets::resolve_files(btf, &mut offsets) {
            log::warn!("major faults will not name their files: {e}");
        }
        // One lookup of the enum for all its values: each lookup scans every type.
        let vm_events: Vec<(String, u32)> = btf
            .find(kind::ENUM, "vm_event_item")
            .into_iter()
            .flat_map(|id| btf.enumerators(id))
            .collect();
        let vm = |name: &str| {
            vm_events
                .iter()
                .find_map(|(n, value)| (n == name).then_some(*value))
                .ok_or_else(|| missing(format!("enum vm_event_item::{name}")))
        };
        Ok(Self {
            vm_pgfault: vm("PGFAULT")?,
            vm_pgmajfault: vm("PGMAJFAULT")?,
            vm_pswpin: vm("PSWPIN")?,
            vm_zswpin: vm("ZSWPIN").unwrap_or(u32::MAX),
            vm_pswpout: vm("PSWPOUT")?,
            vm_thp_fault_alloc: vm("THP_FAULT_ALLOC").unwrap_or(u32::MAX),
            gfp_bits: enum_members_with_prefix(btf, "___GFP_"),
            has_count_memcg_events: btf.has_typedef("btf_trace_count_memcg_events"),
            offsets,
            oom_offsets,
            attach_types: attach_types(btf),
        })
    }
}

/// Each type the programs attach by that the kernel has, with its id.
fn attach_types(btf: &Btf) -> Vec<TypeAt> {
    super::loader::attach_types()
        .filter_map(|(kind, name)| {
            let id = btf.find(kind, &name).first().copied()?;
            Some(TypeAt { kind, name, id })
        })
        .collect()
}

fn missing(what: String) -> Error {
    Error::Btf {
        what,
        reason: "not found in the kernel's BTF".to_string(),
    }
}

/// The value of `name` in `enum enum_name`.
pub(crate) fn enum_value(btf: &Btf, enum_name: &str, name: &str) -> Result<u32, Error> {
    btf.find(kind::ENUM, enum_name)
        .into_iter()
        .flat_map(|id| btf.enumerators(id))
        .find_map(|(n, value)| (n == name).then_some(value))
        .ok_or_else(|| missing(format!("enum {enum_name}::{name}")))
}

/// Every enumerator of the enum that has `{prefix}IO_BIT`, with its value (the gfp bit enum is
/// anonymous, so it is found by its members).
fn enum_members_with_prefix(btf: &Btf, prefix: &str) -> Vec<(String, u32)> {
    let marker = format!("{prefix}IO_BIT");
    btf.enums()
        .find(|&id| btf.has_enumerator(id, &marker))
        .map(|id| {
            btf.enumerators(id)
                .into_iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// The byte offset of `member` in `struct struct_name`, looking through anonymous members.
pub(crate) fn member_offset(btf: &Btf, struct_name: &str, member: &str) -> Result<u32, Error> {
    btf.find(kind::STRUCT, struct_name)
        .into_iter()
        .find_map(|id| find_member(btf, id, member, 0))
        .map(|(bits, _)| bits / 8)
        .ok_or_else(|| missing(format!("struct {struct_name}.{member}")))
}

/// The bit offset and type of member `name` of struct or union `id`, looking through
/// anonymous structs and unions.
pub(crate) fn find_member(btf: &Btf, id: u32, name: &str, base_bits: u32) -> Option<(u32, u32)> {
    for member in btf.members(id) {
        let bits = base_bits + member.bit_offset;
        if member.name == name {
            return Some((bits, member.type_id));
        }
        if member.name.is_empty()
            && let Some(found) = find_member(btf, btf.resolve(member.type_id), name, bits)
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
        assert!(facts.offsets.task_tgid > 0 && facts.offsets.cgroup_kn > 0);
        assert!(facts.oom_offsets);
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
