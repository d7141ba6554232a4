//! The parser on replies captured from Linux 6.18 (struct version 16, 560 bytes), and on
//! replies built field by field for the versions and damage a capture cannot show.
use super::*;

/// The kernel's reply to TASKSTATS_CMD_GET for the selfcheck's swap-storm workload (pid
/// 2436, as a zombie), with `kernel.task_delayacct=1`: 40960 swap-ins, 1600 memcg reclaim
/// stalls.
const REPLY: &str = concat!(
    "540200001f00000002000000310200000201000040020400080001008409000034020300100000000000000000000000",
    "000000008b0200000000000080163317000000000000000000000000000000000000000000a0000000000000f3f11605",
    "00000000d429024d00000000542a8b4c000000006d742d776f726b6c6f61640000000000000000000000000000000000",
    "0000000000000000000000000000000000000000840900003102000055460d6b00000000076a250000000000803e0000",
    "000000005378130000000000f8a100000000000000a0000000000000b1bc9905000000008de8c30d0000000000000000",
    "00000000000000000000000000240000000000000000000000000000000000000000000000000000000000000000000a",
    "000000000000000000000000000000000000000002000000000000008902000000000000803e00000000000053781300",
    "00000000d429024d000000004006000000000000fa31944f000000000000000000000000000000000000000055460d6b",
    "00000000000000000000000000000000000000008409000000000000076a250000000000000000000000000000000000",
    "000000002200000000000000aadb000000000000000000000000000000000000000000002225f00100000000ee060000",
    "0000000000000000000000000000000000000000d9184702000000001002000000000000dc7b510200000000b2740100",
    "000000000000000000000000000000000000000000000000000000000000000000000000312100000000000077030000",
    "0000000000000000000000000000000000000000",
);

/// The controller's reply to CTRL_CMD_GETFAMILY "TASKSTATS" on the same kernel (id 31).
const FAMILY: &str = concat!(
    "70000000100000000100000031020000010200000e0002005441534b5354415453000000060001001f00000008000300",
    "01000000080004000000000008000500000000002c000600140001000800010001000000080002000b00000014000200",
    "0800010004000000080002000a000000",
);

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn a_captured_reply_of_linux_6_18() {
    let reply = bytes(REPLY);
    assert_eq!(reply.len(), 596);
    let parsed = parse_stats_reply(&reply).expect("parses");
    assert_eq!(
        parsed,
        TaskDelays {
            version: 16,
            pid: 2436,
            comm: "mt-workload".into(),
            cpu: Delay {
                count: 651,
                total_ns: 389_224_064
            },
            blkio: Delay::default(),
            swapin: Delay {
                count: 40_960,
                total_ns: 85_389_811
            },
            cpu_run_ns: 1_291_987_412,
            minflt: 41_464,
            majflt: 40_960,
            freepages: Some(Delay {
                count: 1_600,
                total_ns: 1_335_112_186
            }),
            thrashing: Some(Delay::default()),
            compact: Some(Delay::default()),
            wpcopy: Some(Delay {
                count: 34,
                total_ns: 56_234
            }),
        }
    );
    assert_eq!(parse_family_id(&bytes(FAMILY)), Ok(31));
}

/// A `struct taskstats` of `len` bytes with `version` and the fields the tests look at.
fn stats(version: u16, len: usize) -> Vec<u8> {
    let mut s = vec![0u8; len];
    let mut put = |at: usize, v: u64| {
        if at + 8 <= len {
            s[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        }
    };
    put(offset::CPU, 11);
    put(offset::CPU + 8, 12);
    put(offset::SWAPIN, 300);
    put(offset::SWAPIN + 8, 4_000_000);
    put(offset::AC_MINFLT, 16_500);
    put(offset::AC_MAJFLT, 8_200);
    put(offset::FREEPAGES, 2_055);
    put(offset::FREEPAGES + 8, 429_000_000);
    put(offset::COMPACT, 3);
    put(offset::COMPACT + 8, 7_000);
    s[offset::VERSION..offset::VERSION + 2].copy_from_slice(&version.to_ne_bytes());
    s[offset::AC_PID..offset::AC_PID + 4].copy_from_slice(&4242u32.to_ne_bytes());
    s[offset::AC_COMM..offset::AC_COMM + 11].copy_from_slice(b"mt-workload");
    s
}

fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(payload);
    a.resize(a.len().next_multiple_of(4), 0);
    a
}

/// A reply as the kernel builds it: AGGR_PID { PID, NULL padding, STATS }.
fn reply(stats: &[u8]) -> Vec<u8> {
    let mut nested = attr(1, &4242u32.to_ne_bytes());
    nested.extend(attr(6, &[]));
    nested.extend(attr(TASKSTATS_TYPE_STATS, stats));
    let body = attr(TASKSTATS_TYPE_AGGR_PID, &nested);
    let mut msg = request(0x17, 2, 1, 7, 0, &[]);
    msg.truncate(NLMSG_HDRLEN + GENL_HDRLEN);
    msg.extend(body);
    let len = msg.len() as u32;
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    msg
}

#[test]
fn every_field_of_a_recent_struct_is_read_at_its_offset() {
    let parsed = parse_stats_reply(&reply(&stats(16, 512))).expect("parses");
    assert_eq!(parsed.version, 16);
    assert_eq!(parsed.pid, 4242);
    assert_eq!(parsed.comm, "mt-workload");
    assert_eq!(
        parsed.cpu,
        Delay {
            count: 11,
            total_ns: 12
        }
    );
    assert_eq!(parsed.swapin.count, 300);
    assert_eq!((parsed.minflt, parsed.majflt), (16_500, 8_200));
    assert_eq!(
        parsed.freepages,
        Some(Delay {
            count: 2_055,
            total_ns: 429_000_000
        })
    );
    assert_eq!(parsed.compact.map(|d| d.count), Some(3));
    assert_eq!(parsed.thrashing, Some(Delay::default()));
}

#[test]
fn fields_newer_than_the_kernels_struct_are_absent() {
    // Version 8 (Linux 2.6.x to 4.19) ends after freepages_delay_total.
    let parsed = parse_taskstats(&stats(8, offset::FREEPAGES + 16)).expect("parses");
    assert_eq!(parsed.freepages.map(|d| d.count), Some(2_055));
    assert_eq!(
        (parsed.thrashing, parsed.compact, parsed.wpcopy),
        (None, None, None)
    );
    // A version that claims more than the payload holds gets nothing past its end.
    let parsed = parse_taskstats(&stats(13, offset::COMPACT)).expect("parses");
    assert_eq!(parsed.compact, None);
    // An old version's bytes are not read as fields it did not have.
    let parsed = parse_taskstats(&stats(6, 512)).expect("parses");
    assert_eq!(parsed.freepages, None);
}

#[test]
fn short_or_refused_replies_are_errors_not_panics() {
    assert!(matches!(
        parse_taskstats(&[0u8; 100]),
        Err(Malformed::Truncated { need: 184, .. })
    ));
    let full = reply(&stats(14, 432));
    for len in 0..full.len() {
        // Every prefix either parses (it cannot: the struct is last) or is an error.
        assert!(parse_stats_reply(&full[..len]).is_err(), "prefix {len}");
    }
    let mut refused = request(NLMSG_ERROR, 0, 0, 1, 0, &[]);
    refused.truncate(NLMSG_HDRLEN);
    refused.extend_from_slice(&(-libc::ESRCH).to_ne_bytes());
    let len = refused.len() as u32;
    refused[..4].copy_from_slice(&len.to_ne_bytes());
    let error = parse_stats_reply(&refused).expect_err("refused");
    assert_eq!(error, Malformed::Refused { errno: libc::ESRCH });
    assert_eq!(
        io::Error::from(error).raw_os_error(),
        Some(libc::ESRCH),
        "a refusal keeps its errno"
    );
}

#[test]
fn the_family_request_and_reply() {
    let msg = request(
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        1,
        9,
        CTRL_ATTR_FAMILY_NAME,
        TASKSTATS_GENL_NAME,
    );
    // 16 + 4 + (4 + 10 padded to 16).
    assert_eq!(msg.len(), 36);
    assert_eq!(u32::from_ne_bytes(msg[..4].try_into().expect("4")), 36);
    assert_eq!(&msg[24..34], b"TASKSTATS\0");
    let mut reply = msg[..NLMSG_HDRLEN + GENL_HDRLEN].to_vec();
    reply.extend(attr(CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME));
    reply.extend(attr(CTRL_ATTR_FAMILY_ID, &0x17u16.to_ne_bytes()));
    let len = reply.len() as u32;
    reply[..4].copy_from_slice(&len.to_ne_bytes());
    assert_eq!(parse_family_id(&reply), Ok(0x17));
    reply.truncate(reply.len() - 8);
    reply[..4].copy_from_slice(&(len - 8).to_ne_bytes());
    assert_eq!(
        parse_family_id(&reply),
        Err(Malformed::Missing {
            what: "CTRL_ATTR_FAMILY_ID"
        })
    );
}
