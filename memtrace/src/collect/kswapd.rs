//! kswapd's CPU time per NUMA node, from `/proc/PID/schedstat` of the `kswapdN` kernel threads:
//! the time it actually ran, where its wake-to-sleep span also holds its naps before sleeping
//! and its waits for a CPU. kcompactd's the same way, from its `kcompactdN` threads.
use std::fs;

/// The kswapd (or kcompactd) thread of each node, found once at start-up.
#[derive(Clone, Debug, Default)]
pub struct NodeThreads {
    /// (node, pid)
    threads: Vec<(u32, u32)>,
}

/// `kthreadd`, the parent of every kernel thread: a user process named `kswapd0` is not one.
const KTHREADD: u32 = 2;

impl NodeThreads {
    /// Finds the `kswapdN` children of kthreadd.
    pub fn kswapd() -> Self {
        Self::find("kswapd")
    }

    /// Finds the `kcompactdN` children of kthreadd.
    pub fn kcompactd() -> Self {
        Self::find("kcompactd")
    }

    /// Finds the children of kthreadd named `{prefix}N`.
    fn find(prefix: &str) -> Self {
        let mut threads: Vec<(u32, u32)> = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                node_thread(&stat, prefix).map(|nid| (nid, pid))
            })
            .collect();
        threads.sort_unstable();
        Self { threads }
    }

    /// Every node's thread's CPU time so far, in ns, together (`None` when none was read).
    pub fn total_ns(&self) -> Option<u64> {
        let readings = self.read();
        (!readings.is_empty()).then(|| readings.iter().map(|(_, ns)| ns).sum())
    }

    /// Each node's thread's CPU time so far, in ns; threads that can't be read are left out.
    pub fn read(&self) -> Vec<(u32, u64)> {
        self.threads
            .iter()
            .filter_map(|&(nid, pid)| {
                let text = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
                Some((nid, schedstat_cpu_ns(&text)?))
            })
            .collect()
    }
}

/// The node of a `/proc/PID/stat` line if it is kthreadd's `kswapdN` (also `kswapdN:M`, the
/// kernel's name when a node has several kswapd threads: the first number is the node).
pub fn kswapd_node(stat: &str) -> Option<u32> {
    node_thread(stat, "kswapd")
}

/// The node of a `/proc/PID/stat` line if it is kthreadd's `{prefix}N` (or `{prefix}N:M`).
fn node_thread(stat: &str, prefix: &str) -> Option<u32> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let digits = comm.strip_prefix(prefix)?;
    let nid = digits.split(':').next()?.parse().ok()?;
    // After the name: state, then ppid.
    let ppid: u32 = stat
        .get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    (ppid == KTHREADD).then_some(nid)
}

/// The first field of `/proc/PID/schedstat`: time on the CPU, in ns.
pub fn schedstat_cpu_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_kernel_kswapd_threads_only() {
        let kthread = "93 (kswapd0) S 2 0 0 0 -1 10758208 0 0 0 0 0 31 0 0 20 0 1 0 6 0 0";
        assert_eq!(kswapd_node(kthread), Some(0));
        assert_eq!(kswapd_node("94 (kswapd1:2) S 2 0 0"), Some(1));
        // A user process that named itself kswapd0.
        assert_eq!(kswapd_node("4242 (kswapd0) S 1000 4242 1"), None);
        assert_eq!(kswapd_node("95 (kcompactd0) S 2 0 0"), None);
        assert_eq!(kswapd_node("96 (kswapdX) S 2 0 0"), None);
        assert_eq!(kswapd_node("garbage"), None);
        assert_eq!(node_thread("95 (kcompactd0) S 2 0 0", "kcompactd"), Some(0));
    }

    #[test]
    fn schedstat_first_field_is_cpu_time() {
        assert_eq!(schedstat_cpu_ns("123456789 5000 42\n"), Some(123_456_789));
        assert_eq!(schedstat_cpu_ns(""), None);
        assert_eq!(schedstat_cpu_ns("x 1 2"), None);
    }

    #[test]
    fn this_machine_has_a_kswapd() {
        let threads = NodeThreads::kswapd();
        let readings = threads.read();
        assert!(!readings.is_empty(), "no kswapd thread found in /proc");
        assert!(readings.iter().any(|&(nid, _)| nid == 0));
        let kcompactd = NodeThreads::kcompactd().read();
        assert!(kcompactd.iter().any(|&(nid, _)| nid == 0), "no kcompactd0");
    }
}
