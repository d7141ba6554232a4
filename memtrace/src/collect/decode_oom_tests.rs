//! The OOM ring's records: sizes, round trips, and malformed input counted, never a panic.
use memtrace_common::{
    EventKind,
    oom::{AftermathOp, MemcgLevel, OomAftermathEvent, OomCandidateRecord, OomKillEvent},
};

use super::{DecodeError, OomRecord, decode, decode_oom, encode};
use crate::{collect::interval::IntervalBuilder, model::oom::tests::kill_event};

fn exit(op: u32) -> OomAftermathEvent {
    OomAftermathEvent {
        kind: EventKind::OomAftermath as u32,
        op,
        pid: 4242,
        tgid: 4242,
        ts_ns: 5_001_000_000,
    }
}

#[test]
fn oom_records_have_no_padding() {
    // Each size is the sum of the fields' sizes: no implicit padding anywhere.
    assert_eq!(size_of::<MemcgLevel>(), 6 * 8 + 2 * 4);
    assert_eq!(size_of::<OomKillEvent>(), 624);
    assert_eq!(size_of::<OomAftermathEvent>(), 24);
    assert_eq!(size_of::<OomCandidateRecord>(), 6 * 4 + 16 + 6 * 8 + 8 * 8);
    assert_eq!(size_of::<memtrace_common::offsets::KernelOffsets>(), 61 * 4);
    assert_eq!(
        size_of::<memtrace_common::growth::MemoryRecord>(),
        4 * 2 + 8 * 8 + 16
    );
    assert_eq!(size_of::<memtrace_common::growth::StackKey>(), 4 * 4);
    assert_eq!(size_of::<memtrace_common::InFlightFault>(), 4 * 4 + 5 * 8);
}

#[test]
fn kill_and_aftermath_records_round_trip() {
    let kill = kill_event();
    assert_eq!(
        decode_oom(&encode(&kill)),
        Ok(OomRecord::Kill(Box::new(kill)))
    );
    let step = exit(AftermathOp::FinishReaping as u32);
    assert_eq!(decode_oom(&encode(&step)), Ok(OomRecord::Aftermath(step)));
}

#[test]
fn malformed_oom_records_are_errors() {
    let kill = encode(&kill_event());
    assert_eq!(
        decode_oom(&kill[..3]),
        Err(DecodeError::TooShort { len: 3 })
    );
    assert_eq!(
        decode_oom(&kill[..100]),
        Err(DecodeError::BadLength {
            kind: 2,
            len: 100,
            expected: 624
        })
    );
    let too_deep = OomKillEvent {
        memcg_levels: 9,
        ..kill_event()
    };
    assert!(matches!(
        decode_oom(&encode(&too_deep)),
        Err(DecodeError::BadOomRecord { kind: 2, .. })
    ));
    assert!(matches!(
        decode_oom(&encode(&exit(9))),
        Err(DecodeError::BadOomRecord { kind: 3, .. })
    ));
    assert_eq!(
        decode_oom(&77u32.to_ne_bytes()),
        Err(DecodeError::UnknownKind { kind: 77 })
    );
    // Each ring has its own kinds.
    assert_eq!(decode(&kill), Err(DecodeError::WrongRing { kind: 2 }));
    assert_eq!(
        decode_oom(&1u32.to_ne_bytes()),
        Err(DecodeError::WrongRing { kind: 1 })
    );
}

#[test]
fn malformed_oom_records_are_counted() {
    let mut builder = IntervalBuilder::new(0);
    if let Err(error) = decode_oom(&[2, 0, 0, 0, 1]) {
        builder.count_malformed(&error);
    }
    let sample = builder.close(Default::default(), Default::default(), |id| {
        crate::samples::CgroupName {
            id,
            ..Default::default()
        }
    });
    assert_eq!(sample.malformed, 1);
    assert!(sample.first_malformed.is_some());
    assert!(sample.oom.kills.is_empty());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut state = 0x9e37_79b9_u32;
    for len in [0, 1, 4, 23, 24, 25, 623, 624, 625, 700] {
        for _ in 0..20 {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            if let Some(kind) = bytes.get_mut(0) {
                *kind = 2 + (state % 2) as u8;
            }
            let _ = decode_oom(&bytes);
        }
    }
}
