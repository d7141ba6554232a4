//! What to trace: everything, some processes, or a cgroup, resolved into the globals the kernel
//! programs filter on.
use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use memtrace_common::filter_mode;

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

/// The path of the cgroup directory whose inode is `id`, searched in every usable cgroup mount
/// (the memory cgroup of a swapped page is reported by inode). Bounded: at most 20 000
/// directories.
pub fn cgroup_path_of(id: u64) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut budget = 20_000usize;
    for mount in mountinfo.lines().filter_map(parse_cgroup_mount) {
        let mut stack = vec![mount.mount_point];
        while let Some(dir) = stack.pop() {
            if budget == 0 {
                return None;
            }
            budget -= 1;
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            if meta.ino() == id {
                return Some(dir);
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    None
}

/// A cgroup filesystem mount from /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The hierarchy directory shown at the mount point (`/` for the hierarchy's root).
    pub root: PathBuf,
    /// Its kind.
    pub hierarchy: Hierarchy,
}

impl CgroupMount {
    /// Depth of `dir` (inside this mount) below the hierarchy's root.
    pub fn level_of(&self, dir: &Path) -> u32 {
        let below_mount = dir
            .strip_prefix(&self.mount_point)
            .map(|rel| rel.components().count())
            .unwrap_or(0);
        let root_depth = self.root.components().count().saturating_sub(1);
        (below_mount + root_depth) as u32
    }
}

/// The cgroup mount (v2, or v1 with the memory controller) that holds `dir`: the longest
/// matching mount point wins.
pub fn cgroup_mount_of(mountinfo: &str, dir: &Path) -> Option<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(parse_cgroup_mount)
        .filter(|m| dir.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
}

/// Parses one mountinfo line; `None` unless it is a usable cgroup mount.
fn parse_cgroup_mount(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split_whitespace().collect();
    let (root, mount_point) = (*fields.get(3)?, *fields.get(4)?);
    let mut right = right.split_whitespace();
    let fstype = right.next()?;
    let _source = right.next()?;
    let options = right.next().unwrap_or("");
    let hierarchy = match fstype {
        "cgroup2" => Hierarchy::V2,
        "cgroup" if options.split(',').any(|o| o == "memory") => Hierarchy::V1Memory,
        _ => return None,
    };
    Some(CgroupMount {
        mount_point: PathBuf::from(unescape_mount_path(mount_point)),
        root: PathBuf::from(unescape_mount_path(root)),
        hierarchy,
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PURE_V2: &str = "35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn finds_the_v1_memory_hierarchy_and_depth() {
        let dir = Path::new("/sys/fs/cgroup/memory/a/b");
        let mount = cgroup_mount_of(HYBRID, dir).expect("mount");
        assert_eq!(mount.hierarchy, Hierarchy::V1Memory);
        assert_eq!(mount.level_of(dir), 2);
    }

    #[test]
    fn finds_the_v2_hierarchy_in_hybrid_and_pure_layouts() {
        let hybrid = cgroup_mount_of(HYBRID, Path::new("/sys/fs/cgroup/unified/x")).expect("v2");
        assert_eq!(
            (
                hybrid.hierarchy,
                hybrid.level_of(Path::new("/sys/fs/cgroup/unified/x"))
            ),
            (Hierarchy::V2, 1)
        );
        let pure = cgroup_mount_of(PURE_V2, Path::new("/sys/fs/cgroup/system.slice/a.service"))
            .expect("v2");
        assert_eq!(
            pure.level_of(Path::new("/sys/fs/cgroup/system.slice/a.service")),
            2
        );
    }

    #[test]
    fn a_controller_without_memory_is_not_usable() {
        assert_eq!(
            cgroup_mount_of(HYBRID, Path::new("/sys/fs/cgroup/cpu/x")),
            None
        );
        assert_eq!(cgroup_mount_of(HYBRID, Path::new("/tmp")), None);
    }

    #[test]
    fn a_mount_of_a_subtree_adds_its_root_depth() {
        let info = "40 31 0:38 /kubepods/pod1 /mnt/cg rw - cgroup2 cgroup2 rw\n";
        let mount = cgroup_mount_of(info, Path::new("/mnt/cg/c1")).expect("mount");
        assert_eq!(mount.level_of(Path::new("/mnt/cg/c1")), 3);
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
