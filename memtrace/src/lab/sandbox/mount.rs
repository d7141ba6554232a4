//! Finding the memory controller's hierarchy from /proc/self/mountinfo (cgroup v1, v2 or hybrid).
use super::memcg::CgroupVersion;
use crate::error::Error;
use std::path::{Path, PathBuf};

/// The fields of one mountinfo line that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    fstype: String,
    super_options: String,
}

/// Where the memory controller lives on this machine: (hierarchy mount point, version).
pub(super) fn detect() -> Result<(PathBuf, CgroupVersion), Error> {
    let mountinfo = super::sys::read(Path::new("/proc/self/mountinfo"))?;
    find_memory_controller(&mountinfo, |root| {
        std::fs::read_to_string(root.join("cgroup.controllers")).ok()
    })
    .map_err(|reason| Error::Sandbox {
        what: "memory cgroup controller".into(),
        reason,
    })
}

/// Picks the memory controller's hierarchy. `v2_controllers(mount point)` returns the content of
/// that v2 root's `cgroup.controllers` (a parameter so that tests need no real cgroupfs).
/// A v1 memory hierarchy wins: when one is mounted the kernel keeps memory out of v2.
fn find_memory_controller(
    mountinfo: &str,
    v2_controllers: impl Fn(&Path) -> Option<String>,
) -> Result<(PathBuf, CgroupVersion), String> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse_line).collect();
    let v1 = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == "memory"));
    if let Some(m) = v1 {
        return Ok((m.point.clone(), CgroupVersion::V1));
    }
    let v2: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
    let with_memory = v2.iter().find(|m| {
        v2_controllers(&m.point).is_some_and(|c| c.split_whitespace().any(|c| c == "memory"))
    });
    match (with_memory, v2.first()) {
        (Some(m), _) => Ok((m.point.clone(), CgroupVersion::V2)),
        (None, Some(m)) => Err(format!(
            "cgroup v2 is mounted at {} but its cgroup.controllers lacks \"memory\", \
             and no cgroup v1 hierarchy has it",
            m.point.display()
        )),
        (None, None) => Err("no cgroup v1 memory hierarchy and no cgroup v2 mount".into()),
    }
}

/// Parses `id parent maj:min root point options [optional...] - fstype source super_options`.
fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let point = before.split(' ').nth(4)?;
    let mut after = after.split(' ');
    let fstype = after.next()?;
    let super_options = after.nth(1).unwrap_or("");
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fstype: fstype.to_owned(),
        super_options: super_options.to_owned(),
    })
}

/// Undoes the kernel's octal escapes of space, tab, newline and backslash (`\040` etc.).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], code) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine: v1 controllers under /sys/fs/cgroup, v2 at /sys/fs/cgroup/unified without memory.
    const HYBRID: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A typical systemd machine: pure v2 at /sys/fs/cgroup.
    const PURE_V2: &str = "\
24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 24 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn controllers(list: &'static str) -> impl Fn(&Path) -> Option<String> {
        move |_| Some(list.to_owned())
    }

    #[test]
    fn hybrid_picks_v1_memory() {
        let found = find_memory_controller(HYBRID, controllers("cpuset cpu io pids"));
        assert_eq!(
            found,
            Ok(("/sys/fs/cgroup/memory".into(), CgroupVersion::V1))
        );
    }

    #[test]
    fn pure_v2_with_memory() {
        let found =
            find_memory_controller(PURE_V2, controllers("cpuset cpu io memory hugetlb pids"));
        assert_eq!(found, Ok(("/sys/fs/cgroup".into(), CgroupVersion::V2)));
    }

    #[test]
    fn v2_without_memory_is_an_error() {
        let found = find_memory_controller(PURE_V2, controllers("cpuset cpu io pids"));
        let err = found.expect_err("memory is not available");
        assert!(err.contains("/sys/fs/cgroup"), "{err}");
        // "memory_recursiveprot" in the mount options must not count as the controller either.
        assert!(find_memory_controller(PURE_V2, |_| None).is_err());
    }

    #[test]
    fn hybrid_without_v1_memory_falls_back_to_v2_only_if_it_has_memory() {
        let no_v1_memory: String = HYBRID
            .lines()
            .filter(|l| !l.contains(",memory"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(find_memory_controller(&no_v1_memory, controllers("cpu pids")).is_err());
        let found = find_memory_controller(&no_v1_memory, controllers("cpu memory pids"));
        assert_eq!(
            found,
            Ok(("/sys/fs/cgroup/unified".into(), CgroupVersion::V2))
        );
    }

    #[test]
    fn no_cgroups_at_all() {
        assert!(find_memory_controller("", controllers("memory")).is_err());
    }

    #[test]
    fn v1_with_memory_co_mounted_and_optional_fields() {
        let text =
            "35 31 0:32 / /cg/mem\\040x rw shared:3 master:1 - cgroup cgroup rw,cpu,memory\n";
        let found = find_memory_controller(text, |_| None);
        assert_eq!(found, Ok(("/cg/mem x".into(), CgroupVersion::V1)));
    }

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape(r"/a\040b\134c\011"), "/a b\\c\t");
        assert_eq!(unescape(r"/plain\0"), r"/plain\0");
    }
}
