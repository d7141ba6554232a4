//! memtrace's error type: one enum, each variant carrying the context a user needs to act.
use std::path::PathBuf;

/// Everything that can stop memtrace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root, or missing the capabilities to load eBPF.
    #[error(
        "memtrace needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN) to load its eBPF programs; \
         run it with sudo"
    )]
    NotPrivileged,
    /// `--pid` names no running process.
    #[error("no such process: pid {pid}")]
    NoSuchProcess { pid: u32 },
    /// `--cgroup` names no cgroup directory.
    #[error("no such cgroup: {path}")]
    NoSuchCgroup { path: PathBuf },
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
            | Self::NotACgroup { .. }
            | Self::InvalidArgument { .. }
            | Self::Output { .. }
            | Self::Recording { .. } => 2,
            _ => 1,
        }
    }
}
