//! Machine facts an OOM report needs, read when the kill arrives: RAM and swap totals,
//! vm.swappiness, NUMA nodes, and the memory-cgroup hierarchy (to name cgroups by their ids).
use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// Totals and settings, in pages.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostMemory {
    pub page_size: u64,
    /// `totalram_pages()` (MemTotal).
    pub ram_pages: u64,
    /// `total_swap_pages` (SwapTotal).
    pub swap_pages: u64,
    /// vm.swappiness.
    pub vm_swappiness: u32,
    /// Nodes with memory, as a mask, and their present pages.
    pub memory_nodes: u64,
    pub node_present_pages: BTreeMap<u32, u64>,
}

impl HostMemory {
    /// Reads the running machine's facts; a missing file leaves its field at zero.
    pub fn read() -> Self {
        // SAFETY: sysconf has no preconditions.
        let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kb = |key| meminfo_kb(&meminfo, key).unwrap_or(0);
        let nodes = std::fs::read_to_string("/sys/devices/system/node/has_memory")
            .map(|text| parse_node_list(&text))
            .unwrap_or(1);
        let zoneinfo = std::fs::read_to_string("/proc/zoneinfo").unwrap_or_default();
        Self {
            page_size,
            ram_pages: kb("MemTotal") * 1024 / page_size,
            swap_pages: kb("SwapTotal") * 1024 / page_size,
            vm_swappiness: std::fs::read_to_string("/proc/sys/vm/swappiness")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(60),
            memory_nodes: nodes,
            node_present_pages: parse_zoneinfo_present(&zoneinfo),
        }
    }

    /// Present pages of the nodes in `mask`.
    pub fn present_pages_of(&self, mask: u64) -> Vec<u64> {
        self.node_present_pages
            .iter()
            .filter(|(node, _)| **node < 64 && mask & (1 << **node) != 0)
            .map(|(_, pages)| *pages)
            .collect()
    }
}

/// A `Key:   123 kB` line of /proc/meminfo.
pub fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        (k == key).then(|| rest.split_whitespace().next()?.parse().ok())?
    })
}

/// A node list such as `0-1,3` as a mask (nodes past 63 are left out).
pub fn parse_node_list(text: &str) -> u64 {
    let mut mask = 0u64;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u32>(), hi.trim().parse::<u32>()) {
            for node in lo..=hi.min(63) {
                mask |= 1 << node;
            }
        }
    }
    mask
}

/// Sums `present` over the zones of each node in /proc/zoneinfo (`node_present_pages()`).
pub fn parse_zoneinfo_present(text: &str) -> BTreeMap<u32, u64> {
    let mut nodes = BTreeMap::new();
    let mut node = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Node ") {
            node = rest
                .split(',')
                .next()
                .and_then(|n| n.trim().parse::<u32>().ok());
        } else if let (Some(n), Some(value)) = (node, line.strip_prefix("present ")) {
            *nodes.entry(n).or_insert(0) += value.trim().parse::<u64>().unwrap_or(0);
        }
    }
    nodes
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
        let mounts: Vec<(String, String, String)> = mountinfo
            .lines()
            .filter_map(|line| {
                let (left, right) = line.split_once(" - ")?;
                let point = left.split_whitespace().nth(4)?.replace("\\040", " ");
                let mut right = right.split_whitespace();
                let fstype = right.next()?.to_string();
                let options = right.nth(1).unwrap_or("").to_string();
                Some((point, fstype, options))
            })
            .collect();
        let v1 = mounts
            .iter()
            .find(|(_, fs, opts)| fs == "cgroup" && opts.split(',').any(|o| o == "memory"));
        if let Some((point, ..)) = v1 {
            return Some(Self {
                mount: point.into(),
                v1: true,
            });
        }
        let v2 = mounts.iter().find(|(_, fs, _)| fs == "cgroup2")?;
        Some(Self {
            mount: v2.0.clone().into(),
            v1: false,
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

    #[test]
    fn meminfo_and_node_lists() {
        let meminfo = "MemTotal:       24576000 kB\nSwapTotal:       1048576 kB\n";
        assert_eq!(meminfo_kb(meminfo, "MemTotal"), Some(24_576_000));
        assert_eq!(meminfo_kb(meminfo, "Swap"), None);
        assert_eq!(parse_node_list("0\n"), 1);
        assert_eq!(parse_node_list("0-1,3"), 0b1011);
        assert_eq!(parse_node_list(""), 0);
    }

    #[test]
    fn zoneinfo_present_pages_per_node() {
        let text = "Node 0, zone      DMA\n  pages free     3840\n        present  4095\n\
                    Node 0, zone    DMA32\n        present  1000000\n\
                    Node 1, zone   Normal\n        present  2000\n";
        let nodes = parse_zoneinfo_present(text);
        assert_eq!(nodes.get(&0), Some(&1_004_095));
        assert_eq!(nodes.get(&1), Some(&2000));
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
