//! The capabilities memtrace needs, checked before anything is loaded: without them the kernel
//! refuses each map and program with a bare EPERM, which tells the user nothing.
//!
//! The kernel's rule (`bpf_capable()`, `perfmon_capable()`): loading tracing programs and
//! creating their maps needs CAP_BPF, reading kernel memory from them (task fields, stacks) and
//! opening perf events on every CPU needs CAP_PERFMON, and CAP_SYS_ADMIN stands in for either
//! (it is all that kernels before 5.8 know). A sandbox (demo, bench) also turns swap on, which
//! only CAP_SYS_ADMIN allows. /dev/kmsg (CAP_SYSLOG under `kernel.dmesg_restrict`) is optional:
//! without it the OOM report says that no kernel log line was read.
use crate::error::Error;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What a command does with its privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Load and attach the eBPF programs (`record`).
    Trace,
    /// Trace, and build a sandbox with temporary swap (`demo`, `bench`).
    Sandbox,
}

impl Need {
    /// The rule, in the words of the error message.
    fn rule(self) -> &'static str {
        match self {
            Self::Trace => {
                "loading the eBPF programs needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN in \
                 place of either"
            }
            Self::Sandbox => "turning on the sandbox's swap needs CAP_SYS_ADMIN",
        }
    }
}

/// The capabilities `effective` (a CapEff mask) lacks for `need`, by name; empty when enough.
pub fn missing(effective: u64, need: Need) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    let admin = has(CAP_SYS_ADMIN);
    if need == Need::Sandbox {
        return if admin {
            Vec::new()
        } else {
            vec!["CAP_SYS_ADMIN"]
        };
    }
    let mut missing = Vec::new();
    if !admin && !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !admin && !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// Fails, naming what is missing, unless this process's effective capabilities cover `need`.
pub fn check(need: Need) -> Result<(), Error> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::io("reading /proc/self/status", e))?;
    let effective = super::procfs::status_field(&status, "CapEff")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| {
            Error::io(
                "reading /proc/self/status",
                std::io::Error::other("no CapEff line"),
            )
        })?;
    let missing = missing(effective, need);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::MissingCapabilities {
        rule: need.rule(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = 0x1ff_ffff_ffff;

    fn without(caps: &[u32]) -> u64 {
        caps.iter().fold(ALL, |mask, cap| mask & !(1 << cap))
    }

    #[test]
    fn root_has_all_it_needs() {
        assert!(missing(ALL, Need::Trace).is_empty());
        assert!(missing(ALL, Need::Sandbox).is_empty());
        // This machine's root lacks CAP_SYS_RESOURCE (24), which memtrace does without.
        assert!(missing(without(&[24]), Need::Trace).is_empty());
    }

    #[test]
    fn sys_admin_stands_in_for_bpf_and_perfmon() {
        assert!(missing(without(&[CAP_BPF, CAP_PERFMON]), Need::Trace).is_empty());
        assert!(missing(1 << CAP_SYS_ADMIN, Need::Trace).is_empty());
        assert!(missing(without(&[CAP_SYS_ADMIN]), Need::Trace).is_empty());
        assert!(missing(1 << CAP_BPF | 1 << CAP_PERFMON, Need::Trace).is_empty());
    }

    #[test]
    fn what_is_missing_is_named() {
        let dropped = without(&[CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN]);
        assert_eq!(missing(dropped, Need::Trace), ["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(
            missing(without(&[CAP_BPF, CAP_SYS_ADMIN]), Need::Trace),
            ["CAP_BPF"]
        );
        assert_eq!(missing(0, Need::Trace), ["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(
            missing(without(&[CAP_SYS_ADMIN]), Need::Sandbox),
            ["CAP_SYS_ADMIN"]
        );
    }

    #[test]
    fn the_message_names_the_rule_and_the_missing() {
        let error = Error::MissingCapabilities {
            rule: Need::Trace.rule(),
            missing: vec!["CAP_BPF", "CAP_PERFMON"],
        };
        let text = error.to_string();
        assert_eq!(
            text,
            "this process lacks CAP_BPF, CAP_PERFMON: loading the eBPF programs needs CAP_BPF \
             and CAP_PERFMON, or CAP_SYS_ADMIN in place of either (dropped by setpriv, capsh, a \
             container or a systemd unit?)"
        );
        assert_eq!(error.exit_code(), 1);
    }
}
