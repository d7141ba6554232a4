//! What to trace: everything, some processes, or a cgroup, resolved into the globals the kernel
//! programs filter on.
use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use memtrace_common::filter_mode;

use super::cgroups::cgroup_mount_of;
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

/// Checks that `pid` names a live process.
pub fn check_pid(pid: u32) -> Result<(), Error> {
    if pid == 0 || !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(Error::NoSuchProcess { pid });
    }
    Ok(())
}

/// Resolves a cgroup directory against the machine's mounts.
pub fn resolve_cgroup(path: &Path) -> Result<CgroupTarget, Error> {
    let canonical = path.canonicalize().map_err(|_| Error::NoSuchCgroup {
        path: path.to_path_buf(),
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
