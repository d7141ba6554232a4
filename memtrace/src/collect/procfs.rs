//! One parser per /proc (and /sys) file memtrace reads, shared by every user of it. Pure
//! functions of the file's text: the reading is done by the caller.
use std::collections::BTreeMap;

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

/// Finds `key value` in /proc/vmstat text.
pub fn parse_vmstat(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The sum of the /proc/vmstat counters whose names start with `prefix` (`allocstall_`).
pub fn vmstat_sum(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// Field 22 of /proc/PID/stat, `starttime`: clock ticks after boot (CLOCK_BOOTTIME). The name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn stat_starttime_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after the name: starttime is the 20th from there.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The `total=` of the `some` or `full` line of a PSI file.
pub fn psi_total(text: &str, line: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(line))?
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The selected word of a sysfs choice file such as THP's `always [madvise] never`.
pub fn selected_choice(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_string())
}

/// The value of a `Key:\tvalue` line of /proc/PID/status (`Tgid`, `CapEff`, `VmRSS`), trimmed.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|line| Some(line.strip_prefix(key)?.strip_prefix(':')?.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_by_exact_key() {
        let status = "Name:\tbash\nTgid:\t4242\nPid:\t4243\nTracerPid:\t0\n\
                      CapEff:\t000001fffeffffff\nVmRSS:\t   1234 kB\n";
        assert_eq!(status_field(status, "Tgid"), Some("4242"));
        assert_eq!(status_field(status, "Pid"), Some("4243"));
        assert_eq!(status_field(status, "CapEff"), Some("000001fffeffffff"));
        assert_eq!(status_field(status, "VmRSS"), Some("1234 kB"));
        assert_eq!(status_field(status, "Cap"), None);
        assert_eq!(status_field(status, "PPid"), None);
    }

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
    fn starttime_is_counted_after_the_name() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 200 18446744073709551615";
        assert_eq!(stat_starttime_ticks(stat), Some(987_654));
        assert_eq!(stat_starttime_ticks("4242 (x) S 1"), None);
        assert_eq!(stat_starttime_ticks("garbage"), None);
    }

    #[test]
    fn vmstat_psi_and_choices() {
        let vmstat = "pswpin 10\npswpout 20\nallocstall_dma 1\nallocstall_normal 4\n";
        assert_eq!(parse_vmstat(vmstat, "pswpout"), Some(20));
        assert_eq!(parse_vmstat(vmstat, "pswp"), None);
        assert_eq!(vmstat_sum(vmstat, "allocstall_"), 5);
        let psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n";
        assert_eq!(psi_total(psi, "some"), Some(1234));
        assert_eq!(psi_total(psi, "full"), Some(56));
        assert_eq!(psi_total("", "some"), None);
        assert_eq!(
            selected_choice("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(selected_choice("never"), None);
    }
}
