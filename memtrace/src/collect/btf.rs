//! A minimal reader of the kernel's BTF: memtrace needs a few dozen struct offsets and enum
//! values, so it indexes where each type record starts and, by a hash of their names, only the
//! kinds it looks up (structs, unions, enums, typedefs: ~10 % of the types); other kinds are
//! found by scanning. A general BTF parser (a name index of every type) cost ~200 ms and
//! ~40 MB at every start-up; scanning for each of the ~50 lookups cost 20–40 ms.
use crate::error::Error;

const MAGIC: u16 = 0xeb9f;

/// BTF kinds memtrace looks at (the others are only skipped over).
pub mod kind {
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// Raw BTF with the start of every type record.
pub struct Btf {
    data: Vec<u8>,
    /// Byte offset (in `data`) of type id `i + 1`.
    types: Vec<usize>,
    strings: std::ops::Range<usize>,
    /// Ids of the types of the `INDEXED` kinds, by the hash of their name.
    named: std::collections::HashMap<u64, Vec<u32>>,
}

/// The kinds `named` indexes.
const INDEXED: [u32; 5] = [
    kind::STRUCT,
    kind::UNION,
    kind::ENUM,
    kind::TYPEDEF,
    kind::ENUM64,
];

/// FNV-1a of a name, up to its NUL (or the end of `bytes`).
fn name_hash(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take_while(|&&b| b != 0)
        .fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// A member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub type_id: u32,
    pub bit_offset: u32,
}

fn malformed(reason: &str) -> Error {
    Error::Btf {
        what: "kernel BTF".into(),
        reason: reason.into(),
    }
}

impl Btf {
    /// Reads and indexes a BTF file.
    pub fn from_file(path: &str) -> Result<Self, Error> {
        let data = std::fs::read(path).map_err(|e| Error::io(format!("reading {path}"), e))?;
        Self::parse(data)
    }

    /// Indexes raw BTF (native byte order).
    pub fn parse(data: Vec<u8>) -> Result<Self, Error> {
        let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        if u16_at(0) != Some(MAGIC) {
            return Err(malformed("bad magic"));
        }
        let u32_at = |o: usize| {
            data.get(o..o + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let field = |o| u32_at(o).ok_or_else(|| malformed("short header"));
        let (hdr_len, type_off, type_len) = (field(4)?, field(8)?, field(12)?);
        let (str_off, str_len) = (field(16)?, field(20)?);
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if types_end > data.len() || strings.end > data.len() {
            return Err(malformed("sections past the end"));
        }
        let mut types = Vec::with_capacity(type_len / 16);
        let mut named: std::collections::HashMap<u64, Vec<u32>> = Default::default();
        let mut at = types_start;
        while at < types_end {
            types.push(at);
            let info = u32_at(at + 4).ok_or_else(|| malformed("short type"))? as u32;
            let kind = info >> 24 & 0x1f;
            if INDEXED.contains(&kind) {
                let name = strings.start + u32_at(at).unwrap_or(0);
                let hash = name_hash(data.get(name..strings.end).unwrap_or_default());
                named.entry(hash).or_default().push(types.len() as u32);
            }
            at += 12 + extra_len(kind, info & 0xffff)?;
        }
        Ok(Self {
            data,
            types,
            strings,
            named,
        })
    }

    fn u32_at(&self, offset: usize) -> u32 {
        self.data
            .get(offset..offset + 4)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str_at(&self, offset: u32) -> &str {
        let start = self.strings.start + offset as usize;
        let bytes = self.data.get(start..self.strings.end).unwrap_or_default();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).unwrap_or_default()
    }

    fn record(&self, id: u32) -> Option<usize> {
        self.types.get((id as usize).checked_sub(1)?).copied()
    }

    /// (kind, vlen, kind_flag) of a type.
    fn info(&self, id: u32) -> Option<(u32, usize, bool)> {
        let info = self.u32_at(self.record(id)? + 4);
        Some((info >> 24 & 0x1f, (info & 0xffff) as usize, info >> 31 == 1))
    }

    /// The kind of a type (0 for void or an unknown id).
    pub fn kind(&self, id: u32) -> u32 {
        self.info(id).map_or(0, |(k, _, _)| k)
    }

    /// The name of a type.
    pub fn name(&self, id: u32) -> &str {
        self.record(id)
            .map_or("", |at| self.str_at(self.u32_at(at)))
    }

    /// The size of a struct, union or enum.
    pub fn size(&self, id: u32) -> u32 {
        self.record(id).map_or(0, |at| self.u32_at(at + 8))
    }

    /// Ids of every type of `kind` named `name`.
    pub fn find(&self, kind: u32, name: &str) -> Vec<u32> {
        let name = name.as_bytes();
        if INDEXED.contains(&kind) {
            let candidates = self
                .named
                .get(&name_hash(name))
                .map_or(&[][..], Vec::as_slice);
            return candidates
                .iter()
                .copied()
                .filter(|&id| {
                    self.record(id).is_some_and(|at| {
                        self.u32_at(at + 4) >> 24 & 0x1f == kind
                            && self.name_is(self.u32_at(at), name)
                    })
                })
                .collect();
        }
        self.scan(kind, name)
    }

    /// [`Btf::find`] by a scan of every type (~150 000 in a distribution kernel): the name is
    /// compared as bytes in place, without finding its end or checking its UTF-8 first.
    fn scan(&self, kind: u32, name: &[u8]) -> Vec<u32> {
        self.types
            .iter()
            .zip(1u32..)
            .filter(|&(&at, _)| {
                self.u32_at(at + 4) >> 24 & 0x1f == kind && self.name_is(self.u32_at(at), name)
            })
            .map(|(_, id)| id)
            .collect()
    }

    /// Whether the string at `offset` is exactly `name`.
    fn name_is(&self, offset: u32, name: &[u8]) -> bool {
        let start = self.strings.start + offset as usize;
        let end = start + name.len();
        end < self.strings.end && self.data[start..end] == *name && self.data[end] == 0
    }

    /// The type behind typedefs and qualifiers.
    pub fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.kind(id) {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = self.record(id).map_or(0, |at| self.u32_at(at + 8));
                }
                _ => break,
            }
        }
        id
    }

    /// The element type of an array.
    pub fn array_element(&self, id: u32) -> Option<u32> {
        let at = self.record(id)?;
        (self.kind(id) == kind::ARRAY).then(|| self.u32_at(at + 12))
    }

    /// The number of elements of an array.
    pub fn array_len(&self, id: u32) -> Option<u32> {
        let at = self.record(id)?;
        (self.kind(id) == kind::ARRAY).then(|| self.u32_at(at + 20))
    }

    /// The members of a struct or union.
    pub fn members(&self, id: u32) -> Vec<Member> {
        let Some((k, vlen, kind_flag)) = self.info(id) else {
            return Vec::new();
        };
        let Some(at) = self.record(id) else {
            return Vec::new();
        };
        if k != kind::STRUCT && k != kind::UNION {
            return Vec::new();
        }
        (0..vlen)
            .map(|i| {
                let m = at + 12 + i * 12;
                let offset = self.u32_at(m + 8);
                Member {
                    name: self.str_at(self.u32_at(m)).to_string(),
                    type_id: self.u32_at(m + 4),
                    bit_offset: if kind_flag {
                        offset & 0x00ff_ffff
                    } else {
                        offset
                    },
                }
            })
            .collect()
    }

    /// The (name, value) pairs of an enum (32-bit values; enum64 values are truncated).
    pub fn enumerators(&self, id: u32) -> Vec<(String, u32)> {
        let (Some((k, vlen, _)), Some(at)) = (self.info(id), self.record(id)) else {
            return Vec::new();
        };
        let stride = match k {
            kind::ENUM => 8,
            kind::ENUM64 => 12,
            _ => return Vec::new(),
        };
        (0..vlen)
            .map(|i| {
                let e = at + 12 + i * stride;
                (self.str_at(self.u32_at(e)).to_string(), self.u32_at(e + 4))
            })
            .collect()
    }

    /// Whether an enum has an enumerator named `name` (compared in place, no allocation).
    pub fn has_enumerator(&self, id: u32, name: &str) -> bool {
        let (Some((k, vlen, _)), Some(at)) = (self.info(id), self.record(id)) else {
            return false;
        };
        let stride = match k {
            kind::ENUM => 8,
            kind::ENUM64 => 12,
            _ => return false,
        };
        (0..vlen).any(|i| self.name_is(self.u32_at(at + 12 + i * stride), name.as_bytes()))
    }

    /// Ids of every enum (32 or 64-bit), named or not.
    pub fn enums(&self) -> impl Iterator<Item = u32> + '_ {
        (1..=self.types.len() as u32)
            .filter(|&id| matches!(self.kind(id), kind::ENUM | kind::ENUM64))
    }

    /// Whether a typedef of this name exists (e.g. `btf_trace_<tracepoint>`).
    pub fn has_typedef(&self, name: &str) -> bool {
        !self.find(kind::TYPEDEF, name).is_empty()
    }
}

/// A type found by kind and name, with its id in the kernel's BTF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeAt {
    pub kind: u32,
    pub name: String,
    pub id: u32,
}

/// A BTF blob (native byte order) in which each of `types` sits at its own id with its kind
/// and name, and every other id up to the highest holds a stand-in, an anonymous pointer: a
/// parse of it finds those types' ids by name as a parse of the kernel's whole BTF would, at a
/// small part of the cost. Nothing else may be read from it (the types point at void).
pub fn id_index(types: &[TypeAt]) -> Vec<u8> {
    const PTR: u32 = 2;
    let last = types.iter().map(|t| t.id).max().unwrap_or(0) as usize;
    let mut strings = vec![0u8];
    let mut records = vec![[0u32, PTR << 24, 0]; last];
    for t in types.iter().filter(|t| t.id > 0) {
        let name_off = strings.len() as u32;
        strings.extend_from_slice(t.name.as_bytes());
        strings.push(0);
        records[t.id as usize - 1] = [name_off, t.kind << 24, 0];
    }
    let type_len = (records.len() * 12) as u32;
    let mut blob = Vec::with_capacity(24 + type_len as usize + strings.len());
    blob.extend_from_slice(&MAGIC.to_ne_bytes());
    blob.extend_from_slice(&[1, 0]); // version, flags
    for field in [24, 0, type_len, type_len, strings.len() as u32] {
        // hdr_len, type_off, type_len, str_off, str_len
        blob.extend_from_slice(&field.to_ne_bytes());
    }
    for word in records.iter().flatten() {
        blob.extend_from_slice(&word.to_ne_bytes());
    }
    blob.extend_from_slice(&strings);
    blob
}

/// Bytes that follow the 12-byte common part of a type record of `kind` with `vlen` items.
fn extra_len(kind: u32, vlen: u32) -> Result<usize, Error> {
    let vlen = vlen as usize;
    Ok(match kind {
        1 | 14 | 17 => 4,          // INT, VAR, DECL_TAG
        3 => 12,                   // ARRAY
        4 | 5 | 15 => 12 * vlen,   // STRUCT, UNION, DATASEC
        6 | 13 => 8 * vlen,        // ENUM, FUNC_PROTO
        19 => 12 * vlen,           // ENUM64
        2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        other => return Err(malformed(&format!("unknown BTF kind {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs only a readable /sys/kernel/btf/vmlinux, like memtrace itself.
    #[test]
    fn the_name_index_finds_what_a_scan_finds() {
        let btf = Btf::from_file(crate::collect::kernel::VMLINUX_BTF).expect("btf");
        for (kind, name) in [
            (kind::STRUCT, "task_struct"),
            (kind::STRUCT, "sched_entity"),
            (kind::ENUM, "vm_event_item"),
            (kind::TYPEDEF, "btf_trace_count_memcg_events"),
            (kind::UNION, "no_such_union_here"),
            (kind::STRUCT, ""),
        ] {
            assert_eq!(
                btf.find(kind, name),
                btf.scan(kind, name.as_bytes()),
                "{name}"
            );
        }
        assert_eq!(btf.find(kind::STRUCT, "task_struct").len(), 1);
    }

    #[test]
    fn the_id_index_puts_each_type_at_its_id() {
        let types = [
            TypeAt {
                kind: kind::TYPEDEF,
                name: "btf_trace_a".into(),
                id: 3,
            },
            TypeAt {
                kind: kind::FUNC,
                name: "bpf_iter_task".into(),
                id: 7,
            },
        ];
        let index = Btf::parse(id_index(&types)).expect("parses");
        assert_eq!(index.types.len(), 7);
        for t in &types {
            assert_eq!(index.find(t.kind, &t.name), vec![t.id], "{}", t.name);
            assert_eq!(index.name(t.id), t.name);
        }
        assert_eq!(index.kind(1), 2);
        assert_eq!(index.name(1), "");
        assert_eq!(Btf::parse(id_index(&[])).expect("empty").types.len(), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Btf::parse(Vec::new()).is_err());
        assert!(Btf::parse(vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_err());
        let mut header = vec![0u8; 24];
        header[..2].copy_from_slice(&MAGIC.to_ne_bytes());
        header[4] = 24;
        header[12] = 200; // types past the end
        assert!(Btf::parse(header).is_err());
    }

    #[test]
    fn reads_the_running_kernel() {
        let btf = Btf::from_file(super::super::kernel::VMLINUX_BTF).expect("vmlinux BTF");
        let task = btf.find(kind::STRUCT, "task_struct");
        assert_eq!(task.len(), 1);
        let members = btf.members(task[0]);
        assert!(members.iter().any(|m| m.name == "pid" && m.bit_offset > 0));
        let vm_events = btf.find(kind::ENUM, "vm_event_item");
        assert!(
            btf.enumerators(vm_events[0])
                .iter()
                .any(|(n, _)| n == "PGMAJFAULT")
        );
        assert!(btf.has_typedef("btf_trace_sched_switch"));
    }
}
