//! What /proc says about another process: its memory, its CPU time, and the BPF maps it holds.
use crate::Error;

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resident {
    /// VmRSS: now.
    pub rss_kib: u64,
    /// VmHWM: the peak so far.
    pub hwm_kib: u64,
    /// RssAnon: heap and other private memory.
    pub anon_kib: u64,
    /// RssFile: file-backed pages, which include the ring buffer's mapping of a BPF map.
    pub file_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid`.
pub fn resident(pid: u32) -> Result<Resident, Error> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let field =
        |key| status_kib(&text, key).ok_or_else(|| Error::io(&path, std::io::Error::other(key)));
    Ok(Resident {
        rss_kib: field("VmRSS")?,
        hwm_kib: field("VmHWM")?,
        anon_kib: field("RssAnon")?,
        file_kib: field("RssFile")?,
    })
}

/// User plus system CPU time of `pid` so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, Error> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let ticks = cpu_ticks(&text)
        .ok_or_else(|| Error::io(&path, std::io::Error::other("no utime/stime")))?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / per_second.max(1) as f64)
}

/// Bytes of locked memory of every BPF map `pid` holds an fd of. Programs and links also carry
/// a `memlock` line; only maps (those with a `map_type` line) count.
pub fn bpf_map_bytes(pid: u32) -> Result<u64, Error> {
    let dir = format!("/proc/{pid}/fdinfo");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut total = 0;
    for entry in entries.flatten() {
        // An fd may close between listing and reading: skip it.
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            total += map_memlock(&text).unwrap_or(0);
        }
    }
    Ok(total)
}

/// `key:   123 kB` of /proc/PID/status, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // comm may hold spaces and parentheses: count fields after its closing parenthesis, where
    // field 3 (state) has index 0.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The `memlock` of an fdinfo text if it describes a BPF map.
pub fn map_memlock(fdinfo: &str) -> Option<u64> {
    let field = |key: &str| {
        fdinfo.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim())
        })
    };
    field("map_type")?;
    field("memlock")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let status = "Name:\tmemtrace\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(10_240));
        assert_eq!(status_kib(status, "VmHWM"), Some(20_480));
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert_eq!(status_kib("VmRSSX:\t1 kB\n", "VmRSS"), None);
    }

    #[test]
    fn stat_cpu_after_a_tricky_comm() {
        let stat = "42 (a) b) S 1 42 42 0 -1 4194304 10 0 0 0 250 50 0 0 20 0 1 0 100";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn only_maps_count() {
        let map = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1\nmap_type:\t27\n\
                   key_size:\t0\nvalue_size:\t0\nmax_entries:\t8388608\nmap_flags:\t0x0\n\
                   map_extra:\t0x0\nmemlock:\t8400896\nmap_id:\t12\n";
        let prog = "pos:\t0\nflags:\t02000002\nprog_type:\t26\nprog_jited:\t1\n\
                    memlock:\t4096\nprog_id:\t40\n";
        assert_eq!(map_memlock(map), Some(8_400_896));
        assert_eq!(map_memlock(prog), None);
        assert_eq!(map_memlock("pos:\t0\n"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        assert!(resident(me).expect("status").rss_kib > 0);
        assert!(cpu_seconds(me).expect("stat") >= 0.0);
    }
}
