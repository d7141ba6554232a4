//! A temporary memory cgroup (v1 or v2) with a memory limit and a swap policy.
use super::{PREFIX, mount, procs, sys};
use crate::error::Error;
use log::{debug, warn};
use std::path::{Path, PathBuf};

/// Which cgroup interface the memory controller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy per-controller hierarchy (`memory.limit_in_bytes`, ...).
    V1,
    /// Unified hierarchy (`memory.max`, ...).
    V2,
}

/// Limits a sandbox memcg starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemcgLimits {
    /// Memory limit in bytes.
    pub memory_bytes: u64,
    /// None = swap allowed without limit (v2: memory.swap.max=max; v1: memsw unlimited); Some(0) = no swap at all (v1: memsw.limit = memory limit; v2: memory.swap.max=0)
    pub swap_bytes: Option<u64>,
}

/// A memory cgroup this process created; removed (with its processes) on `remove()` or drop.
#[derive(Debug)]
pub struct Memcg {
    path: PathBuf,
    version: CgroupVersion,
    /// Set when creating it had to add "+memory" to the v2 parent, to undo that afterwards.
    enabled_memory_in_parent: bool,
    removed: bool,
}

impl Memcg {
    /// Creates a new memory cgroup named memtrace-sandbox-<our pid>-<counter> with the limits.
    pub fn create(limits: &MemcgLimits) -> Result<Memcg, Error> {
        let (root, version) = mount::detect()?;
        let enabled_memory_in_parent = version == CgroupVersion::V2 && enable_memory(&root)?;
        // A stale directory of a dead process that had our pid may exist: skip to the next name.
        let mut attempts = 0;
        let path = loop {
            let path = root.join(super::next_name().0);
            match std::fs::create_dir(&path) {
                Ok(()) => break path,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(e) => {
                    if enabled_memory_in_parent {
                        disable_memory(&root);
                    }
                    return Err(Error::io(format!("creating cgroup {}", path.display()), e));
                }
            }
        };
        debug!("created memcg {} ({version:?})", path.display());
        let memcg = Memcg {
            path,
            version,
            enabled_memory_in_parent,
            removed: false,
        };
        // On error `memcg` is dropped, which removes the directory again.
        memcg.apply(limits)?;
        Ok(memcg)
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup interface of this memcg.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Moves a process into the cgroup (write pid to cgroup.procs).
    pub fn add_pid(&self, pid: u32) -> Result<(), Error> {
        sys::write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// The processes (thread-group ids) in the cgroup.
    pub fn pids(&self) -> Result<Vec<u32>, Error> {
        procs::pids(&self.path)
    }

    /// Memory limit in bytes as the kernel holds it now (v1 memory.limit_in_bytes, v2 memory.max).
    pub fn limit_bytes(&self) -> Result<u64, Error> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.limit_in_bytes",
            CgroupVersion::V2 => "memory.max",
        };
        let text = sys::read(&self.path.join(file))?;
        parse_limit(&text).ok_or_else(|| self.error(format!("unexpected {file} content {text:?}")))
    }

    /// Reads one counter of memory.stat (v1 names like "pgmajfault", "swap"; v2 like "pgmajfault", "pswpin").
    pub fn stat(&self, key: &str) -> Result<Option<u64>, Error> {
        Ok(parse_counter(
            &sys::read(&self.path.join("memory.stat"))?,
            key,
        ))
    }

    /// Number of OOM kills in this memcg: v1 memory.oom_control "oom_kill N"; v2 memory.events "oom_kill N".
    pub fn oom_kills(&self) -> Result<u64, Error> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        parse_counter(&sys::read(&self.path.join(file))?, "oom_kill").ok_or_else(|| {
            self.error(format!(
                "{file} has no oom_kill line (kernel older than 4.13?)"
            ))
        })
    }

    /// Kills every process inside, then removes the directory; bounded (~5 s per step). Idempotent.
    pub fn remove(&mut self) -> Result<(), Error> {
        if self.removed {
            return Ok(());
        }
        if self.path.exists() {
            let use_kill_file = self.version == CgroupVersion::V2;
            procs::kill_all(&self.path, use_kill_file)?;
            procs::rmdir(&self.path)?;
            debug!("removed memcg {}", self.path.display());
        }
        self.removed = true;
        if let (true, Some(parent)) = (self.enabled_memory_in_parent, self.path.parent()) {
            disable_memory(parent);
        }
        Ok(())
    }

    /// Takes charge of an existing memcg directory (a stale one the sweep found).
    pub(super) fn adopt(path: PathBuf, version: CgroupVersion) -> Memcg {
        Memcg {
            path,
            version,
            enabled_memory_in_parent: false,
            removed: false,
        }
    }

    fn apply(&self, limits: &MemcgLimits) -> Result<(), Error> {
        let file = |name: &str| self.path.join(name);
        match self.version {
            CgroupVersion::V1 => {
                // memsw (memory + swap) may never be below the memory limit: set memory first.
                sys::write(
                    &file("memory.limit_in_bytes"),
                    &limits.memory_bytes.to_string(),
                )?;
                let Some(swap) = limits.swap_bytes else {
                    return Ok(());
                };
                let memsw = file("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    sys::write(
                        &memsw,
                        &limits.memory_bytes.saturating_add(swap).to_string(),
                    )
                } else if swap == 0 {
                    // No swap accounting (swapaccount=0): memcg reclaim with swappiness 0 never swaps.
                    debug!("no memory.memsw.limit_in_bytes; using memory.swappiness=0");
                    sys::write(&file("memory.swappiness"), "0")
                } else {
                    Err(self.error(
                        "a swap limit needs swap accounting (memory.memsw.*), absent here".into(),
                    ))
                }
            }
            CgroupVersion::V2 => {
                sys::write(&file("memory.max"), &limits.memory_bytes.to_string())?;
                let swap_max = file("memory.swap.max");
                match (limits.swap_bytes, swap_max.exists()) {
                    (None, true) => sys::write(&swap_max, "max"),
                    (None, false) => Ok(()),
                    (Some(swap), true) => sys::write(&swap_max, &swap.to_string()),
                    (Some(_), false) => {
                        Err(self.error("a swap limit needs memory.swap.max, absent here".into()))
                    }
                }
            }
        }
    }

    fn error(&self, reason: String) -> Error {
        Error::Sandbox {
            what: format!("memory cgroup {}", self.path.display()),
            reason,
        }
    }
}

impl Drop for Memcg {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            warn!("leaving memory cgroup {} behind: {e}", self.path.display());
        }
    }
}

/// Makes "memory" available to the children of the v2 cgroup `parent`; true if we had to.
fn enable_memory(parent: &Path) -> Result<bool, Error> {
    let control = parent.join("cgroup.subtree_control");
    if sys::read(&control)?
        .split_whitespace()
        .any(|c| c == "memory")
    {
        return Ok(false);
    }
    sys::write(&control, "+memory")?;
    debug!("enabled +memory in {}", control.display());
    Ok(true)
}

/// Undoes our "+memory" in the v2 `parent`, unless another sandbox (maybe of another run) still
/// relies on it. The kernel refuses (EBUSY) if some other cgroup started delegating memory.
fn disable_memory(parent: &Path) {
    let others = std::fs::read_dir(parent).map(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
    });
    if !matches!(others, Ok(false)) {
        return;
    }
    if let Err(e) = sys::write(&parent.join("cgroup.subtree_control"), "-memory") {
        warn!(
            "could not restore the memory controller setting of {}: {e}",
            parent.display()
        );
    }
}

/// A limit file's value; "max" (v2 unlimited) is u64::MAX.
fn parse_limit(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// The value of `key` in "key value" lines (memory.stat, memory.events, memory.oom_control).
fn parse_counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_STAT: &str = "cache 135168\nrss 1638400\nswap 4096\npgmajfault 7\n\
total_pgmajfault 9\ntotal_swap 4096\n";
    const V2_STAT: &str =
        "anon 1638400\nfile 135168\npgfault 1200\npgmajfault 3\npswpin 44\npswpout 90\n";

    #[test]
    fn stat_counters() {
        assert_eq!(parse_counter(V1_STAT, "pgmajfault"), Some(7));
        assert_eq!(parse_counter(V1_STAT, "swap"), Some(4096));
        assert_eq!(parse_counter(V1_STAT, "total_pgmajfault"), Some(9));
        assert_eq!(parse_counter(V2_STAT, "pswpin"), Some(44));
        assert_eq!(parse_counter(V2_STAT, "pgmajfau"), None);
        assert_eq!(parse_counter(V2_STAT, "nothing"), None);
    }

    #[test]
    fn oom_kill_lines() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_counter(v1, "oom_kill"), Some(1));
        assert_eq!(parse_counter(v2, "oom_kill"), Some(2));
        assert_eq!(
            parse_counter("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"),
            None
        );
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("67108864\n"), Some(64 << 20));
        assert_eq!(parse_limit("max\n"), Some(u64::MAX));
        assert_eq!(
            parse_limit("9223372036854771712\n"),
            Some(9_223_372_036_854_771_712)
        );
        assert_eq!(parse_limit("junk"), None);
    }
}
