//! The one reader of cgroup mounts (/proc/self/mountinfo) and cgroupfs: which hierarchy holds
//! a directory, how deep it is, the memory controller's hierarchy, and the path of a cgroup
//! known only by its id (the inode of its directory).
use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::filter::Hierarchy;

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

/// The memory limit of a cgroup directory: v2's `memory.max` or v1's `memory.limit_in_bytes`;
/// `None` when it has none (`max`, or v1's page-counter maximum) or cannot be read.
pub fn memory_limit_bytes(dir: &Path) -> Option<u64> {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let text = read("memory.max").or_else(|| read("memory.limit_in_bytes"))?;
    parse_memory_limit(&text)
}

/// A limit file's text as bytes; `max` and v1's "unlimited" (above 2^62) are `None`.
pub fn parse_memory_limit(text: &str) -> Option<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|&bytes| bytes < 1 << 62)
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

/// Every cgroup mount (v2, or v1 with the memory controller) in `mountinfo`.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo.lines().filter_map(parse_cgroup_mount).collect()
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

/// The memory controller's hierarchy: where it is mounted and whether it is cgroup v1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryHierarchy {
    pub mount: PathBuf,
    pub v1: bool,
}

impl MemoryHierarchy {
    /// From /proc/self/mountinfo: a v1 memory hierarchy wins (the kernel then keeps memory out
    /// of v2), else the first cgroup2 mount.
    pub fn from_mountinfo(mountinfo: &str) -> Option<Self> {
        let mounts: Vec<CgroupMount> = mountinfo.lines().filter_map(parse_cgroup_mount).collect();
        let pick = |h: Hierarchy| mounts.iter().find(|m| m.hierarchy == h);
        let found = pick(Hierarchy::V1Memory).or_else(|| pick(Hierarchy::V2))?;
        Some(Self {
            mount: found.mount_point.clone(),
            v1: found.hierarchy == Hierarchy::V1Memory,
        })
    }

    /// This machine's.
    pub fn read() -> Option<Self> {
        Self::from_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
    }

    /// The directory of a cgroup chain given root first (ids are directory inodes): each level
    /// is looked up among the children of the one above.
    pub fn path_of_chain(&self, ids_root_first: &[u64]) -> Option<PathBuf> {
        let mut dir = self.mount.clone();
        for &id in ids_root_first.iter().skip(1) {
            dir = child_with_inode(&dir, id)?;
        }
        Some(dir)
    }

    /// The directory whose inode is `id`, searched breadth-first (at most `limit` directories).
    pub fn find(&self, id: u64, limit: usize) -> Option<PathBuf> {
        let mut queue = std::collections::VecDeque::from([self.mount.clone()]);
        let mut seen = 0;
        while let Some(dir) = queue.pop_front() {
            if std::fs::metadata(&dir).is_ok_and(|m| m.ino() == id) {
                return Some(dir);
            }
            seen += 1;
            if seen >= limit {
                return None;
            }
            queue.extend(subdirs(&dir));
        }
        None
    }
}

fn subdirs(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
}

fn child_with_inode(dir: &Path, id: u64) -> Option<PathBuf> {
    subdirs(dir).find(|child| std::fs::metadata(child).is_ok_and(|m| m.ino() == id))
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
    fn memory_limits_of_both_versions() {
        assert_eq!(parse_memory_limit("67108864\n"), Some(64 << 20));
        assert_eq!(parse_memory_limit("max\n"), None);
        assert_eq!(parse_memory_limit("9223372036854771712\n"), None);
    }

    #[test]
    fn hierarchy_prefers_v1_memory() {
        let hybrid = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let found = MemoryHierarchy::from_mountinfo(hybrid).expect("found");
        assert_eq!(
            found,
            MemoryHierarchy {
                mount: "/sys/fs/cgroup/memory".into(),
                v1: true
            }
        );
        let v2 = "27 24 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,memory_recursiveprot\n";
        let found = MemoryHierarchy::from_mountinfo(v2).expect("found");
        assert!(!found.v1);
        assert_eq!(
            MemoryHierarchy::from_mountinfo("1 2 0:1 / /proc rw - proc proc rw\n"),
            None
        );
    }

    #[test]
    fn chains_resolve_through_directory_inodes() {
        let root = std::env::temp_dir().join(format!("memtrace-oom-host-{}", std::process::id()));
        let leaf = root.join("a").join("b");
        std::fs::create_dir_all(&leaf).expect("dirs");
        let ino = |p: &Path| std::fs::metadata(p).expect("meta").ino();
        let hierarchy = MemoryHierarchy {
            mount: root.clone(),
            v1: true,
        };
        let chain = [ino(&root), ino(&root.join("a")), ino(&leaf)];
        assert_eq!(hierarchy.path_of_chain(&chain), Some(leaf.clone()));
        assert_eq!(hierarchy.find(ino(&leaf), 100), Some(leaf.clone()));
        assert_eq!(hierarchy.path_of_chain(&[1, 2]), None);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
