//! The kernel's delay accounting of one task, through taskstats (generic netlink family
//! `TASKSTATS`, as the kernel's tools/accounting/getdelays.c asks for it): how many times and
//! for how long the task waited for memory reclaim (`freepages`), swap-in I/O, thrashing pages,
//! compaction, block I/O and a CPU. The delays are counted only while `kernel.task_delayacct`
//! is 1; the fault counts always are.
//!
//! `struct taskstats` only ever grows at its end; each field is read at its fixed offset, when
//! the kernel's version of the struct has it (by its `version` and by the payload's length).
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use crate::error::Error;

/// A count of delays and their total, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delay {
    pub count: u64,
    pub total_ns: u64,
}

/// The fields of one task's `struct taskstats` that memtrace compares itself with.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskDelays {
    /// The struct's version (`TASKSTATS_VERSION` of the kernel that sent it).
    pub version: u16,
    /// `ac_pid` and `ac_comm`.
    pub pid: u32,
    pub comm: String,
    /// Waiting for a CPU while runnable (`cpu_count`, `cpu_delay_total`).
    pub cpu: Delay,
    /// Waiting for synchronous block I/O.
    pub blkio: Delay,
    /// Waiting for swap-in I/O (`swap_read_folio()`: one per page read).
    pub swapin: Delay,
    /// Time on a CPU (`cpu_run_real_total`), ns.
    pub cpu_run_ns: u64,
    /// `ac_minflt`, `ac_majflt`.
    pub minflt: u64,
    pub majflt: u64,
    /// Direct and memcg reclaim (`do_try_to_free_pages()`), version 7 on.
    pub freepages: Option<Delay>,
    /// Waiting for pages that were evicted and are read again, version 9 on.
    pub thrashing: Option<Delay>,
    /// Direct compaction, version 11 on.
    pub compact: Option<Delay>,
    /// Copying a write-protected page, version 13 on.
    pub wpcopy: Option<Delay>,
}

/// A reply that is not what the kernel sends.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Shorter than its header or than a length it declares.
    #[error("{what} truncated: {len} bytes, {need} needed")]
    Truncated {
        what: &'static str,
        len: usize,
        need: usize,
    },
    /// The kernel answered with an error (`-errno` in an NLMSG_ERROR message).
    #[error("the kernel refused the request: {}", io::Error::from_raw_os_error(*errno))]
    Refused { errno: i32 },
    /// A message without the attribute that carries the answer.
    #[error("no {what} in the reply")]
    Missing { what: &'static str },
}

// Netlink and generic netlink constants (<linux/netlink.h>, <linux/genetlink.h>).
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `nla_type` carries two flag bits above the type.
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;

// <linux/taskstats.h>.
const TASKSTATS_GENL_NAME: &[u8] = b"TASKSTATS\0";
const TASKSTATS_GENL_VERSION: u8 = 1;
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_ATTR_PID: u16 = 1;
const TASKSTATS_TYPE_STATS: u16 = 3;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
const TASKSTATS_TYPE_AGGR_TGID: u16 = 5;
const TS_COMM_LEN: usize = 32;

/// Offsets in `struct taskstats` (x86-64 and every other ABI: the struct aligns its u64s).
mod offset {
    pub const VERSION: usize = 0;
    pub const CPU: usize = 16;
    pub const BLKIO: usize = 32;
    pub const SWAPIN: usize = 48;
    pub const CPU_RUN_REAL_TOTAL: usize = 64;
    pub const AC_COMM: usize = 80;
    pub const AC_PID: usize = 128;
    pub const AC_MINFLT: usize = 168;
    pub const AC_MAJFLT: usize = 176;
    pub const FREEPAGES: usize = 312;
    pub const THRASHING: usize = 328;
    pub const COMPACT: usize = 352;
    pub const WPCOPY: usize = 400;
}

/// Parses a `struct taskstats` payload; fields the kernel's version lacks are `None`.
pub fn parse_taskstats(payload: &[u8]) -> Result<TaskDelays, Malformed> {
    let u64_at = |at: usize| -> Option<u64> {
        let bytes = payload.get(at..at + 8)?;
        Some(u64::from_ne_bytes(bytes.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        let bytes = payload.get(at..at + 4)?;
        Some(u32::from_ne_bytes(bytes.try_into().ok()?))
    };
    let need = offset::AC_MAJFLT + 8;
    let truncated = Malformed::Truncated {
        what: "struct taskstats",
        len: payload.len(),
        need,
    };
    if payload.len() < need {
        return Err(truncated);
    }
    let version = u16::from_ne_bytes([payload[offset::VERSION], payload[offset::VERSION + 1]]);
    let delay = |at: usize| -> Option<Delay> {
        Some(Delay {
            count: u64_at(at)?,
            total_ns: u64_at(at + 8)?,
        })
    };
    let since = |min_version: u16, at: usize| (version >= min_version).then(|| delay(at)).flatten();
    let comm = &payload[offset::AC_COMM..offset::AC_COMM + TS_COMM_LEN];
    let comm = comm.split(|&b| b == 0).next().unwrap_or_default();
    let field = |value: Option<u64>| value.ok_or(truncated.clone());
    Ok(TaskDelays {
        version,
        pid: u32_at(offset::AC_PID).ok_or(truncated.clone())?,
        comm: String::from_utf8_lossy(comm).into_owned(),
        cpu: delay(offset::CPU).ok_or(truncated.clone())?,
        blkio: delay(offset::BLKIO).ok_or(truncated.clone())?,
        swapin: delay(offset::SWAPIN).ok_or(truncated.clone())?,
        cpu_run_ns: field(u64_at(offset::CPU_RUN_REAL_TOTAL))?,
        minflt: field(u64_at(offset::AC_MINFLT))?,
        majflt: field(u64_at(offset::AC_MAJFLT))?,
        freepages: since(7, offset::FREEPAGES),
        thrashing: since(9, offset::THRASHING),
        compact: since(11, offset::COMPACT),
        wpcopy: since(13, offset::WPCOPY),
    })
}

/// One netlink attribute: its type (flags masked off) and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attr<'a> {
    kind: u16,
    payload: &'a [u8],
}

/// The attributes in `bytes`, each padded to 4 bytes.
fn attrs(mut bytes: &[u8]) -> Result<Vec<Attr<'_>>, Malformed> {
    let mut found = Vec::new();
    while bytes.len() >= NLA_HDRLEN {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > bytes.len() {
            return Err(Malformed::Truncated {
                what: "netlink attribute",
                len: bytes.len(),
                need: len.max(NLA_HDRLEN),
            });
        }
        found.push(Attr {
            kind,
            payload: &bytes[NLA_HDRLEN..len],
        });
        bytes = bytes.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(found)
}

/// The attributes of the first generic netlink message in `reply`, or the error it carries.
fn genl_attrs(reply: &[u8]) -> Result<Vec<Attr<'_>>, Malformed> {
    let truncated = |need| Malformed::Truncated {
        what: "netlink message",
        len: reply.len(),
        need,
    };
    if reply.len() < NLMSG_HDRLEN {
        return Err(truncated(NLMSG_HDRLEN));
    }
    let len = u32::from_ne_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize;
    let kind = u16::from_ne_bytes([reply[4], reply[5]]);
    if len < NLMSG_HDRLEN || len > reply.len() {
        return Err(truncated(len.max(NLMSG_HDRLEN)));
    }
    let body = &reply[NLMSG_HDRLEN..len];
    if kind == NLMSG_ERROR {
        let errno = body
            .get(..4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(truncated(NLMSG_HDRLEN + 4))?;
        return Err(Malformed::Refused { errno: -errno });
    }
    attrs(
        body.get(GENL_HDRLEN..)
            .ok_or(truncated(NLMSG_HDRLEN + GENL_HDRLEN))?,
    )
}

/// The family id in the controller's reply to CTRL_CMD_GETFAMILY.
fn parse_family_id(reply: &[u8]) -> Result<u16, Malformed> {
    genl_attrs(reply)?
        .iter()
        .find(|a| a.kind == CTRL_ATTR_FAMILY_ID)
        .and_then(|a| Some(u16::from_ne_bytes(a.payload.get(..2)?.try_into().ok()?)))
        .ok_or(Malformed::Missing {
            what: "CTRL_ATTR_FAMILY_ID",
        })
}

/// The task's statistics in a reply to TASKSTATS_CMD_GET: the STATS attribute nested in
/// AGGR_PID (or AGGR_TGID), beside the id and any padding attribute.
pub fn parse_stats_reply(reply: &[u8]) -> Result<TaskDelays, Malformed> {
    let outer = genl_attrs(reply)?;
    let aggregate = outer
        .iter()
        .find(|a| matches!(a.kind, TASKSTATS_TYPE_AGGR_PID | TASKSTATS_TYPE_AGGR_TGID))
        .ok_or(Malformed::Missing {
            what: "TASKSTATS_TYPE_AGGR_PID",
        })?;
    let stats = attrs(aggregate.payload)?
        .into_iter()
        .find(|a| a.kind == TASKSTATS_TYPE_STATS)
        .ok_or(Malformed::Missing {
            what: "TASKSTATS_TYPE_STATS",
        })?;
    parse_taskstats(stats.payload)
}

/// A generic netlink request: headers and one attribute.
fn request(family: u16, cmd: u8, version: u8, seq: u32, attr: u16, value: &[u8]) -> Vec<u8> {
    let attr_len = NLA_HDRLEN + value.len();
    let len = NLMSG_HDRLEN + GENL_HDRLEN + attr_len.next_multiple_of(4);
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&family.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[cmd, version, 0, 0]);
    msg.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    msg.extend_from_slice(&attr.to_ne_bytes());
    msg.extend_from_slice(value);
    msg.resize(len, 0);
    msg
}

/// A generic netlink socket with the TASKSTATS family resolved.
pub struct Taskstats {
    socket: OwnedFd,
    family: u16,
    seq: u32,
}

/// How long a reply may take before the kernel is taken not to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

impl Taskstats {
    /// Opens the socket and looks up the family (absent when the kernel lacks
    /// CONFIG_TASKSTATS).
    pub fn open() -> Result<Self, Error> {
        // SAFETY: plain socket(2); the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(Error::io(
                "opening a generic netlink socket",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        set_timeout(&socket)?;
        let mut client = Self {
            socket,
            family: 0,
            seq: 0,
        };
        let reply = client.ask(
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            1,
            CTRL_ATTR_FAMILY_NAME,
            TASKSTATS_GENL_NAME,
        )?;
        client.family = parse_family_id(&reply).map_err(|e| {
            Error::io(
                "looking up the TASKSTATS netlink family (CONFIG_TASKSTATS?)",
                e.into(),
            )
        })?;
        Ok(client)
    }

    /// The statistics of one task (a thread id; a process's main thread has its pid). A
    /// zombie still has them: read an exited child's before reaping it.
    pub fn task(&mut self, tid: u32) -> Result<TaskDelays, Error> {
        let reply = self.ask(
            self.family,
            TASKSTATS_CMD_GET,
            TASKSTATS_GENL_VERSION,
            TASKSTATS_CMD_ATTR_PID,
            &tid.to_ne_bytes(),
        )?;
        parse_stats_reply(&reply)
            .map_err(|e| Error::io(format!("taskstats of task {tid}"), e.into()))
    }

    /// Sends one request and returns the reply's bytes.
    fn ask(
        &mut self,
        family: u16,
        cmd: u8,
        version: u8,
        attr: u16,
        value: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.seq += 1;
        let msg = request(family, cmd, version, self.seq, attr, value);
        // SAFETY: a zeroed sockaddr_nl (pid 0: the kernel) and a buffer that outlives the call.
        let sent = unsafe {
            let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.socket.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const kernel).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(Error::io(
                "sending a taskstats request",
                io::Error::last_os_error(),
            ));
        }
        let mut reply = vec![0u8; 16 << 10];
        // SAFETY: recv into our own buffer, at most its length.
        let got = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                reply.as_mut_ptr().cast(),
                reply.len(),
                0,
            )
        };
        if got < 0 {
            return Err(Error::io(
                "receiving a taskstats reply",
                io::Error::last_os_error(),
            ));
        }
        reply.truncate(got as usize);
        Ok(reply)
    }
}

impl From<Malformed> for io::Error {
    fn from(e: Malformed) -> Self {
        match e {
            Malformed::Refused { errno } => io::Error::from_raw_os_error(errno),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Bounds the wait for a reply.
fn set_timeout(socket: &OwnedFd) -> Result<(), Error> {
    let timeout = libc::timeval {
        tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: a timeval that outlives the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "setting the netlink socket's timeout",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "taskstats_tests.rs"]
mod tests;
