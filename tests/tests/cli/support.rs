//! Helpers of the CLI tests: a cgroup nested deeper than PATH_MAX, and a `memtrace demo` that is
//! killed and swept up on drop.
use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::Child,
};

/// Each level's name: long, so that few levels pass PATH_MAX (a name may have 255 bytes).
fn level() -> String {
    format!("memtrace-deep-{}", "d".repeat(200))
}

/// A chain of nested cgroups under `parent` whose path is longer than PATH_MAX. No single path
/// reaches its bottom, so it is made and removed with mkdirat/unlinkat relative to an open fd
/// of each level; dropping it (also in a panic) removes every level, deepest first.
pub struct DeepCgroup {
    /// The open directories: the parent first, then each level made.
    dirs: Vec<OwnedFd>,
    /// The bottom's path.
    pub path: PathBuf,
}

impl DeepCgroup {
    /// Nests levels under `parent` until the path is longer than `min_bytes`.
    pub fn create(parent: &Path, min_bytes: usize) -> Self {
        let mut deep = Self {
            dirs: vec![open_dir(None, parent.as_os_str().as_bytes())],
            path: parent.to_path_buf(),
        };
        let level = level();
        let name = CString::new(level.as_str()).expect("a C name");
        while deep.path.as_os_str().len() <= min_bytes {
            let last = deep.dirs.last().expect("the parent").as_raw_fd();
            // SAFETY: a valid fd and NUL-terminated name.
            let made = unsafe { libc::mkdirat(last, name.as_ptr(), 0o755) };
            assert_eq!(made, 0, "mkdirat: {}", std::io::Error::last_os_error());
            deep.dirs.push(open_dir(Some(last), level.as_bytes()));
            deep.path.push(&level);
        }
        deep
    }
}

impl Drop for DeepCgroup {
    fn drop(&mut self) {
        let name = CString::new(level()).expect("a C name");
        while self.dirs.len() > 1 {
            drop(self.dirs.pop());
            let parent = self.dirs.last().expect("the parent").as_raw_fd();
            // SAFETY: a valid fd and NUL-terminated name.
            let removed = unsafe { libc::unlinkat(parent, name.as_ptr(), libc::AT_REMOVEDIR) };
            if removed != 0 {
                eprintln!("unlinkat: {}", std::io::Error::last_os_error());
            }
        }
    }
}

/// Opens a directory, relative to `at` when given.
fn open_dir(at: Option<i32>, path: &[u8]) -> OwnedFd {
    let c_path = CString::new(path).expect("a C path");
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: a valid fd (or AT_FDCWD) and NUL-terminated path.
    let fd = unsafe { libc::openat(at.unwrap_or(libc::AT_FDCWD), c_path.as_ptr(), flags) };
    assert!(fd >= 0, "openat: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel just handed us this fd.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A `memtrace demo` that is SIGKILLed on drop, after which the leftovers it could not remove
/// are swept: a failing test must not leave the next one a sandbox.
pub struct KilledDemo(pub Child);

impl KilledDemo {
    /// Sends SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KilledDemo {
    fn drop(&mut self) {
        self.kill();
        for line in memtrace::lab::sandbox::sweep_stale() {
            eprintln!("swept after the test: {line}");
        }
    }
}

/// Whether `pid` has exited (gone, or a zombie no one reaped yet).
pub fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}
