//! Minor faults, the bulk of all faults, travel in per-CPU batches of compact entries instead
//! of one record each: the ring buffer's reservation and the copy of `comm` are paid once per
//! batch. A thread group's first fault on a CPU still goes as a full `FaultEvent`, so its name is
//! known; `CommEvent` renames it when its main thread is renamed (exec, prctl).
use crate::COMM_LEN;

/// Entries per batch.
pub const MINOR_BATCH_LEN: usize = 64;
/// Slots of the per-CPU cache of thread groups already named on that CPU.
pub const SEEN_SLOTS: usize = 256;
/// A batch older than this is sent with its next entry, so a quiet CPU does not hold faults
/// back for long (the rest is collected when the recording ends).
pub const MINOR_BATCH_MAX_AGE_NS: u64 = 100_000_000;

/// The latency of an entry that counts an untimed fault (see `fault_flags::UNTIMED`); longer
/// minor faults than `u32::MAX - 1` ns go as full records.
pub const UNTIMED_LATENCY: u32 = u32::MAX;

/// Minor faults of one CPU, 528 bytes. Each entry is `tgid << 32 | latency_ns`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinorBatch {
    /// Always `EventKind::MinorBatch as u32`.
    pub kind: u32,
    /// Entries in use.
    pub count: u32,
    /// `bpf_ktime_get_ns()` of the first entry.
    pub first_ns: u64,
    pub entries: [u64; MINOR_BATCH_LEN],
}

impl MinorBatch {
    /// Packs one minor fault.
    pub const fn entry(tgid: u32, latency_ns: u32) -> u64 {
        ((tgid as u64) << 32) | latency_ns as u64
    }

    /// Unpacks one entry into (tgid, latency_ns).
    pub const fn unpack(entry: u64) -> (u32, u32) {
        ((entry >> 32) as u32, entry as u32)
    }
}

/// The per-CPU map value: the batch being filled and the cache of named thread groups.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MinorBatchSlot {
    /// The process of the last batched entry and its memory cgroup: named on this CPU.
    pub last_tgid: u32,
    pub _pad: u32,
    pub last_css: u64,
    pub batch: MinorBatch,
    /// `seen[tgid % SEEN_SLOTS] == tgid` when this CPU already sent a full record for `tgid`.
    pub seen: [u32; SEEN_SLOTS],
    /// The memory cgroup (its `css` pointer) that full record carried: a process moved to
    /// another cgroup sends a full record again, so its faults are counted in the new one.
    pub seen_css: [u64; SEEN_SLOTS],
}

/// A process's main thread took a new name, 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommEvent {
    /// Always `EventKind::Comm as u32`.
    pub kind: u32,
    pub tgid: u32,
    pub comm: [u8; COMM_LEN],
}

#[cfg(feature = "user")]
// SAFETY: the following are `repr(C)`, `Copy`, and have no implicit padding.
unsafe impl aya::Pod for MinorBatch {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for MinorBatchSlot {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for CommEvent {}
