//! memtrace's error type: one enum, each variant carrying the context a user needs to act.
use std::path::PathBuf;

/// Everything that can stop memtrace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root.
    #[error(
        "memtrace needs root (with CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) to load its eBPF \
         programs; run it with sudo"
    )]
    NotPrivileged,
    /// Root, but with capabilities dropped (setpriv, capsh, a container): named before the
    /// kernel refuses every map and program with a bare EPERM.
    #[error(
        "this process lacks {}: {rule} (dropped by setpriv, capsh, a container or a systemd unit?)",
        missing.join(", ")
    )]
    MissingCapabilities {
        rule: &'static str,
        missing: Vec<&'static str>,
    },
    /// `--pid` names no running process.
    #[error("no such process: pid {pid}")]
    NoSuchProcess { pid: u32 },
    /// `--cgroup` names no cgroup directory.
    #[error("no such cgroup: {path}")]
    NoSuchCgroup { path: PathBuf },
    /// `--cgroup` names a path that cannot be resolved for another reason than its absence
    /// (too long for PATH_MAX, a component that is not a directory, no permission).
    #[error("cannot resolve cgroup {}: {source}", shorten(path))]
    CgroupUnresolvable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--cgroup` names a directory that is not in a cgroup hierarchy memtrace can filter on.
    #[error("{path} is not a cgroup v2 directory nor a cgroup v1 memory-controller directory")]
    NotACgroup { path: PathBuf },
    /// A command-line value that does not parse.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// The kernel's BTF lacks something memtrace needs.
    #[error("kernel BTF: {what}: {reason}")]
    Btf { what: String, reason: String },
    /// The embedded eBPF object is empty (built with AYA_BUILD_SKIP).
    #[error(
        "this memtrace binary was built without its eBPF programs (AYA_BUILD_SKIP); rebuild it with `cargo xtask build`"
    )]
    NoEbpfObject,
    /// Loading the eBPF object failed.
    #[error("loading the eBPF programs: {0}")]
    Load(#[from] aya::EbpfError),
    /// A map the kernel programs define is missing or has the wrong type.
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    /// Every program that carries the fault tracing failed to attach.
    #[error("no fault hook could be attached: {0}")]
    NothingAttached(String),
    /// A sandbox (cgroup, swap device) could not be set up.
    #[error("sandbox: {what}: {reason}")]
    Sandbox { what: String, reason: String },
    /// An output file (`-o`, `--json`) cannot be written: found before tracing starts.
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A recording that cannot be read at all (missing, empty, foreign, damaged header).
    #[error("{path}: {reason}")]
    Recording { path: PathBuf, reason: String },
    /// An I/O error with the path or action it concerns.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit status for this error: 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NoSuchProcess { .. }
            | Self::NoSuchCgroup { .. }
            | Self::CgroupUnresolvable { .. }
            | Self::NotACgroup { .. }
            | Self::InvalidArgument { .. }
            | Self::Output { .. }
            | Self::Recording { .. } => 2,
            _ => 1,
        }
    }
}

/// A path cut to its two ends when it is too long to read on one line.
fn shorten(path: &std::path::Path) -> String {
    const KEEP: usize = 60;
    let text = path.display().to_string();
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 2 * KEEP + 20 {
        return text;
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!("{head}...({} bytes)...{tail}", text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_cgroup_path_is_shortened_in_the_message() {
        let long = PathBuf::from(format!("/sys/fs/cgroup/{}", "d/".repeat(3000)));
        let error = Error::CgroupUnresolvable {
            path: long,
            source: std::io::Error::from_raw_os_error(libc::ENAMETOOLONG),
        };
        let text = error.to_string();
        assert!(text.len() < 250, "{text}");
        assert!(
            text.starts_with("cannot resolve cgroup /sys/fs/cgroup/d/d/"),
            "{text}"
        );
        assert!(text.contains("(6015 bytes)"), "{text}");
        assert!(text.ends_with("File name too long (os error 36)"), "{text}");
        assert_eq!(error.exit_code(), 2);
        let short = Error::CgroupUnresolvable {
            path: PathBuf::from("/sys/fs/cgroup/a"),
            source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
        };
        assert!(
            short
                .to_string()
                .starts_with("cannot resolve cgroup /sys/fs/cgroup/a: ")
        );
    }
}
