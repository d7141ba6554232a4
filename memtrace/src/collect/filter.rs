//! What to trace: everything, some processes, or a cgroup, resolved into the globals the kernel
//! programs filter on.
use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use memtrace_common::filter_mode;

use super::{cgroups::cgroup_mount_of, procfs};
use crate::error::Error;

/// Which tasks the kernel programs trace.
#[derive(Clone, Debug, Default)]
pub enum Filter {
    /// Every task.
    #[default]
    All,
    /// These thread groups, and with `children` the processes they start afterwards.
    Pids { pids: Vec<u32>, children: bool },
    /// Tasks in this cgroup or below it.
    Cgroup(CgroupTarget),
}

/// A cgroup directory resolved to what the kernel compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupTarget {
    /// The directory as given, canonicalized.
    pub path: PathBuf,
    /// Which hierarchy it belongs to.
    pub hierarchy: Hierarchy,
    /// The directory's inode: the kernel's cgroup id (v2) or kernfs node id (v1).
    pub id: u64,
    /// Depth below the hierarchy's root (the root is 0).
    pub level: u32,
}

impl CgroupTarget {
    /// Whether the directory was removed (or replaced by a new cgroup of the same name, which
    /// the kernel programs do not match): nothing in it can be traced any more.
    pub fn is_gone(&self) -> bool {
        !std::fs::metadata(&self.path).is_ok_and(|meta| meta.ino() == self.id)
    }
}

/// The kind of cgroup hierarchy a directory lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hierarchy {
    /// The unified (v2) hierarchy.
    V2,
    /// A v1 hierarchy with the memory controller.
    V1Memory,
}

/// The filter as the kernel programs' globals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterGlobals {
    pub mode: u32,
    pub follow_children: u32,
    pub cgroup_id: u64,
    pub cgroup_level: u32,
}

impl Filter {
    /// The globals that encode this filter.
    pub fn globals(&self) -> FilterGlobals {
        match self {
            Self::All => FilterGlobals::default(),
            Self::Pids { children, .. } => FilterGlobals {
                mode: filter_mode::PIDS,
                follow_children: u32::from(*children),
                ..FilterGlobals::default()
            },
            Self::Cgroup(target) => FilterGlobals {
                mode: match target.hierarchy {
                    Hierarchy::V2 => filter_mode::CGROUP_V2,
                    Hierarchy::V1Memory => filter_mode::MEMCG_V1,
                },
                cgroup_id: target.id,
                cgroup_level: target.level,
                ..FilterGlobals::default()
            },
        }
    }

    /// The traced thread groups (empty unless `Pids`).
    pub fn pids(&self) -> &[u32] {
        match self {
            Self::Pids { pids, .. } => pids,
            _ => &[],
        }
    }

    /// Whether new children of traced processes are traced.
    pub fn follows_children(&self) -> bool {
        matches!(self, Self::Pids { children: true, .. })
    }

    /// One line for humans: what is traced.
    pub fn describe(&self) -> String {
        match self {
            Self::All => "all processes".to_string(),
            Self::Pids { pids, children } => {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                let kids = if *children { " and their children" } else { "" };
                format!("pid {}{kids}", list.join(","))
            }
            Self::Cgroup(target) => format!("cgroup {}", target.path.display()),
        }
    }
}

/// The process (thread group) of `pid`, which may name any of its threads: /proc/TID exists
/// for every thread, but the kernel programs filter on thread groups and pidfds need a leader.
pub fn process_of(pid: u32) -> Result<u32, Error> {
    if pid == 0 {
        return Err(Error::NoSuchProcess { pid });
    }
    let path = format!("/proc/{pid}/status");
    let status = match std::fs::read_to_string(&path) {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchProcess { pid });
        }
        Err(e) => return Err(Error::io(format!("reading {path}"), e)),
    };
    procfs::status_field(&status, "Tgid")
        .and_then(|tgid| tgid.parse().ok())
        .ok_or_else(|| Error::io(format!("reading {path}"), std::io::Error::other("no Tgid")))
}

/// Resolves a cgroup directory against the machine's mounts.
pub fn resolve_cgroup(path: &Path) -> Result<CgroupTarget, Error> {
    let canonical = path.canonicalize().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NoSuchCgroup {
                path: path.to_path_buf(),
            }
        } else {
            Error::CgroupUnresolvable {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let meta =
        std::fs::metadata(&canonical).map_err(|e| Error::io(canonical.display().to_string(), e))?;
    if !meta.is_dir() {
        return Err(Error::NotACgroup { path: canonical });
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
    let mount = cgroup_mount_of(&mountinfo, &canonical).ok_or_else(|| Error::NotACgroup {
        path: canonical.clone(),
    })?;
    Ok(CgroupTarget {
        level: mount.level_of(&canonical),
        path: canonical,
        hierarchy: mount.hierarchy,
        id: meta.ino(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cgroup_and_an_unresolvable_one_are_told_apart() {
        let missing = Path::new("/nonexistent-memtrace-test/cgroup");
        assert!(matches!(
            resolve_cgroup(missing),
            Err(Error::NoSuchCgroup { .. })
        ));
        // A component that is a file, and a name longer than NAME_MAX: the real reason.
        let not_dir = Path::new("/proc/self/status/cgroup");
        match resolve_cgroup(not_dir) {
            Err(Error::CgroupUnresolvable { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOTDIR));
            }
            other => panic!("{other:?}"),
        }
        let long = std::env::temp_dir().join("x".repeat(300));
        match resolve_cgroup(&long) {
            Err(Error::CgroupUnresolvable { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENAMETOOLONG));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_removed_or_replaced_directory_is_gone() {
        let dir = std::env::temp_dir().join(format!("memtrace-gone-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("a temporary directory");
        let target = CgroupTarget {
            id: std::fs::metadata(&dir).expect("its inode").ino(),
            path: dir.clone(),
            hierarchy: Hierarchy::V2,
            level: 1,
        };
        assert!(!target.is_gone());
        let replaced = CgroupTarget {
            id: target.id + 1,
            ..target.clone()
        };
        assert!(replaced.is_gone());
        std::fs::remove_dir(&dir).expect("remove it");
        assert!(target.is_gone());
    }

    #[test]
    fn a_thread_resolves_to_its_process() {
        let me = std::process::id();
        assert_eq!(process_of(me).ok(), Some(me));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid has no failure mode.
            let _ = tx.send(unsafe { libc::gettid() } as u32);
            let _ = wait.recv();
        });
        let tid = rx.recv().expect("the thread's id");
        assert_ne!(tid, me);
        assert_eq!(process_of(tid).ok(), Some(me));
        drop(done);
        thread.join().expect("the thread ends");
        assert!(matches!(
            process_of(0),
            Err(Error::NoSuchProcess { pid: 0 })
        ));
    }

    #[test]
    fn globals_encode_the_filter() {
        let pids = Filter::Pids {
            pids: vec![7],
            children: true,
        };
        assert_eq!(pids.globals().mode, filter_mode::PIDS);
        assert_eq!(pids.globals().follow_children, 1);
        assert_eq!(Filter::All.globals(), FilterGlobals::default());
    }
}
