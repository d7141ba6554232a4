//! Turns ring-buffer records into typed events. Checks the length and the kind of every record,
//! never transmutes: anything malformed becomes a `DecodeError` that the caller counts.
use memtrace_common::{
    EventKind, FaultClass, FaultEvent, KswapdEvent, KswapdOp, ProcessEvent, ProcessOp, StallEvent,
    StallKind, SwapDir, SwapEvent,
    batch::{CommEvent, MINOR_BATCH_LEN, MinorBatch},
    oom::{AftermathOp, OOM_MEMCG_LEVELS, OomAftermathEvent, OomCandidateRecord, OomKillEvent},
};

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A completed fault, with its class checked.
    Fault {
        event: FaultEvent,
        class: FaultClass,
    },
    /// A completed reclaim or compaction stall, with its kind checked.
    Stall { event: StallEvent, stall: StallKind },
    /// Swap traffic, with its direction checked.
    Swap { event: SwapEvent, dir: SwapDir },
    /// kswapd activity, with its op checked.
    Kswapd { event: KswapdEvent, op: KswapdOp },
    /// Minor faults of one CPU, `count` checked (boxed: 528 bytes, once per 64 faults).
    MinorBatch(Box<MinorBatch>),
    /// A process's new name (exec, prctl).
    Comm(CommEvent),
    /// A traced process started or ended, with its op checked.
    Process { event: ProcessEvent, op: ProcessOp },
}

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the 4-byte kind.
    #[error("record of {len} bytes is too short for a kind")]
    TooShort { len: usize },
    /// A kind this memtrace does not know.
    #[error("unknown record kind {kind}")]
    UnknownKind { kind: u32 },
    /// The length does not match the kind's record.
    #[error("record kind {kind} has {len} bytes, expected {expected}")]
    BadLength {
        kind: u32,
        len: usize,
        expected: usize,
    },
    /// A fault record with an unknown class.
    #[error("fault record with unknown class {class}")]
    BadClass { class: u32 },
    /// A minor-fault batch claiming more entries than it holds.
    #[error("minor-fault batch with {count} entries")]
    BadBatch { count: u32 },
    /// A stall record with an unknown stall kind.
    #[error("stall record with unknown kind {stall}")]
    BadStall { stall: u32 },
    /// A record whose id field holds a value this memtrace does not know.
    #[error("record kind {kind} with unknown {field} {value}")]
    BadField {
        kind: u32,
        field: &'static str,
        value: u32,
    },
    /// A record of a kind that belongs to the other ring buffer.
    #[error("record kind {kind} arrived on the wrong ring buffer")]
    WrongRing { kind: u32 },
    /// An OOM record with a field out of range.
    #[error("OOM record kind {kind}: {reason}")]
    BadOomRecord { kind: u32, reason: &'static str },
}

/// A decoded record of the OOM ring buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OomRecord {
    /// A kill, as `oom:mark_victim` saw it (boxed: kills are rare and large).
    Kill(Box<OomKillEvent>),
    /// A victim's exit or an OOM-reaper step.
    Aftermath(OomAftermathEvent),
}

/// Decodes one record.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let kind = kind_of(bytes)?;
    match EventKind::try_from(kind).map_err(|kind| DecodeError::UnknownKind { kind })? {
        EventKind::Fault => {
            let event: FaultEvent = read_exact(bytes, kind)?;
            let class = FaultClass::try_from(event.class)
                .map_err(|class| DecodeError::BadClass { class })?;
            Ok(Record::Fault { event, class })
        }
        EventKind::Stall => {
            let event: StallEvent = read_exact(bytes, kind)?;
            let stall = StallKind::try_from(event.stall)
                .map_err(|stall| DecodeError::BadStall { stall })?;
            Ok(Record::Stall { event, stall })
        }
        EventKind::Swap => {
            let event: SwapEvent = read_exact(bytes, kind)?;
            let dir = SwapDir::try_from(event.dir).map_err(|dir| DecodeError::BadField {
                kind,
                field: "swap direction",
                value: dir,
            })?;
            Ok(Record::Swap { event, dir })
        }
        EventKind::Kswapd => {
            let event: KswapdEvent = read_exact(bytes, kind)?;
            let op = KswapdOp::try_from(event.op).map_err(|op| DecodeError::BadField {
                kind,
                field: "kswapd op",
                value: op,
            })?;
            Ok(Record::Kswapd { event, op })
        }
        EventKind::MinorBatch => {
            let batch: MinorBatch = read_exact(bytes, kind)?;
            if batch.count as usize > MINOR_BATCH_LEN {
                return Err(DecodeError::BadBatch { count: batch.count });
            }
            Ok(Record::MinorBatch(Box::new(batch)))
        }
        EventKind::Comm => Ok(Record::Comm(read_exact(bytes, kind)?)),
        EventKind::Process => {
            let event: ProcessEvent = read_exact(bytes, kind)?;
            let op = ProcessOp::try_from(event.op).map_err(|op| DecodeError::BadField {
                kind,
                field: "process op",
                value: op,
            })?;
            Ok(Record::Process { event, op })
        }
        EventKind::OomKill | EventKind::OomAftermath => Err(DecodeError::WrongRing { kind }),
    }
}

/// Decodes one record of the OOM ring buffer.
pub fn decode_oom(bytes: &[u8]) -> Result<OomRecord, DecodeError> {
    let kind = kind_of(bytes)?;
    let bad = |reason| DecodeError::BadOomRecord { kind, reason };
    match EventKind::try_from(kind).map_err(|kind| DecodeError::UnknownKind { kind })? {
        EventKind::OomKill => {
            let event: OomKillEvent = read_exact(bytes, kind)?;
            if event.memcg_levels as usize > OOM_MEMCG_LEVELS {
                return Err(bad("more memcg levels than the record holds"));
            }
            Ok(OomRecord::Kill(Box::new(event)))
        }
        EventKind::OomAftermath => {
            let event: OomAftermathEvent = read_exact(bytes, kind)?;
            if AftermathOp::try_from(event.op).is_err() {
                return Err(bad("unknown aftermath step"));
            }
            Ok(OomRecord::Aftermath(event))
        }
        _ => Err(DecodeError::WrongRing { kind }),
    }
}

/// Splits the candidates iterator's output into records; a trailing partial record is dropped.
pub fn candidate_records(bytes: &[u8]) -> Vec<OomCandidateRecord> {
    iterator_records(bytes).collect()
}

/// Splits a task iterator's output into its fixed-size records, one at a time; a trailing
/// partial record is dropped.
pub fn iterator_records<T: aya::Pod>(bytes: &[u8]) -> impl Iterator<Item = T> + '_ {
    bytes
        .chunks_exact(size_of::<T>())
        // SAFETY: each chunk has exactly the record's size, a `Pod` record is valid for any
        // bytes, and `read_unaligned` needs no alignment.
        .map(|chunk| unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast()) })
}

/// The 4-byte kind every record starts with.
fn kind_of(bytes: &[u8]) -> Result<u32, DecodeError> {
    let kind_bytes: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::TooShort { len: bytes.len() })?;
    Ok(u32::from_ne_bytes(kind_bytes))
}

/// Reads a `T` from a record that must be exactly `size_of::<T>()` bytes.
fn read_exact<T: aya::Pod>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    let expected = size_of::<T>();
    if bytes.len() != expected {
        return Err(DecodeError::BadLength {
            kind,
            len: bytes.len(),
            expected,
        });
    }
    // SAFETY: the length is checked, `T: Pod` is valid for any bit pattern, and
    // `read_unaligned` does not require alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The bytes of a record, for tests and replays.
pub fn encode<T: aya::Pod>(value: &T) -> Vec<u8> {
    // SAFETY: `T: Pod` has no padding and may be viewed as bytes.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

#[cfg(test)]
#[path = "decode_oom_tests.rs"]
mod oom_tests;

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn fault(class: u32) -> FaultEvent {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"test");
        FaultEvent {
            kind: EventKind::Fault as u32,
            class,
            tgid: 42,
            tid: 43,
            start_ns: 1_000,
            latency_ns: 250,
            comm,
            ..FaultEvent::default()
        }
    }

    #[test]
    fn fault_records_have_no_padding_and_round_trip() {
        assert_eq!(size_of::<FaultEvent>(), 96);
        let event = fault(FaultClass::MajorSwap as u32);
        let decoded = decode(&encode(&event)).expect("decodes");
        assert_eq!(
            decoded,
            Record::Fault {
                event,
                class: FaultClass::MajorSwap
            }
        );
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        assert_eq!(decode(&[]), Err(DecodeError::TooShort { len: 0 }));
        assert_eq!(decode(&[1, 0]), Err(DecodeError::TooShort { len: 2 }));
        assert_eq!(
            decode(&99u32.to_ne_bytes()),
            Err(DecodeError::UnknownKind { kind: 99 })
        );
        let bytes = encode(&fault(0));
        assert_eq!(
            decode(&bytes[..40]),
            Err(DecodeError::BadLength {
                kind: 1,
                len: 40,
                expected: 96
            })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(decode(&long), Err(DecodeError::BadLength { .. })));
        assert_eq!(
            decode(&encode(&fault(7))),
            Err(DecodeError::BadClass { class: 7 })
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x1234_5678_u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn stall_swap_and_kswapd_records_round_trip() {
        assert_eq!(size_of::<StallEvent>(), 80);
        assert_eq!(size_of::<SwapEvent>(), 48);
        assert_eq!(size_of::<KswapdEvent>(), 56);
        let stall = StallEvent {
            kind: EventKind::Stall as u32,
            stall: StallKind::MemcgReclaim as u32,
            tgid: 1,
            tid: 2,
            start_ns: 3,
            latency_ns: 4,
            nr_reclaimed: 5,
            order: 0,
            gfp_flags: 0xcc0,
            detail: 0,
            zones: 0,
            memcg_id: 0,
            comm: [0; 16],
        };
        assert_eq!(
            decode(&encode(&stall)),
            Ok(Record::Stall {
                event: stall,
                stall: StallKind::MemcgReclaim
            })
        );
        let bad = StallEvent { stall: 99, ..stall };
        assert_eq!(
            decode(&encode(&bad)),
            Err(DecodeError::BadStall { stall: 99 })
        );
        let swap = SwapEvent {
            kind: EventKind::Swap as u32,
            dir: 0,
            tgid: 1,
            pages: 1,
            memcg_id: 7,
            ts_ns: 9,
            comm: [0; 16],
        };
        assert_eq!(
            decode(&encode(&swap)),
            Ok(Record::Swap {
                event: swap,
                dir: SwapDir::Out
            })
        );
        let sideways = SwapEvent { dir: 7, ..swap };
        assert_eq!(
            decode(&encode(&sideways)),
            Err(DecodeError::BadField {
                kind: 11,
                field: "swap direction",
                value: 7
            })
        );
        assert!(matches!(
            decode(&encode(&swap)[..40]),
            Err(DecodeError::BadLength { kind: 11, .. })
        ));
    }

    #[test]
    fn minor_batches_are_checked() {
        assert_eq!(size_of::<MinorBatch>(), 528);
        let mut batch = MinorBatch {
            kind: EventKind::MinorBatch as u32,
            count: 2,
            first_ns: 0,
            entries: [0; MINOR_BATCH_LEN],
        };
        batch.entries[0] = MinorBatch::entry(42, 900);
        assert_eq!(
            decode(&encode(&batch)),
            Ok(Record::MinorBatch(Box::new(batch)))
        );
        assert_eq!(MinorBatch::unpack(batch.entries[0]), (42, 900));
        let bad = MinorBatch { count: 65, ..batch };
        assert_eq!(
            decode(&encode(&bad)),
            Err(DecodeError::BadBatch { count: 65 })
        );
        let exec = CommEvent {
            kind: EventKind::Comm as u32,
            tgid: 7,
            comm: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        assert_eq!(decode(&encode(&exec)), Ok(Record::Comm(exec)));
    }

    #[test]
    fn process_records_are_checked() {
        assert_eq!(size_of::<ProcessEvent>(), 48);
        let start = ProcessEvent {
            kind: EventKind::Process as u32,
            op: ProcessOp::Start as u32,
            tgid: 5,
            parent_tgid: 4,
            start_ns: 77,
            ts_ns: 78,
            comm: [0; 16],
        };
        assert_eq!(
            decode(&encode(&start)),
            Ok(Record::Process {
                event: start,
                op: ProcessOp::Start
            })
        );
        let odd = ProcessEvent { op: 9, ..start };
        assert!(matches!(
            decode(&encode(&odd)),
            Err(DecodeError::BadField { value: 9, .. })
        ));
    }

    #[test]
    fn comm_stops_at_nul() {
        use crate::samples::comm_str;
        assert_eq!(comm_str(b"bash\0\0garbage"), "bash");
        assert_eq!(comm_str(b"0123456789abcdef"), "0123456789abcdef");
    }
}
