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

/// The zone names of the first node of /proc/zoneinfo, in the kernel's order (the position is
/// the zone index): every node has the same zones, populated or not.
pub fn parse_zone_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut first = None;
    for rest in text.lines().filter_map(|line| line.strip_prefix("Node ")) {
        let (node, zone) = rest.split_once(", zone").unwrap_or((rest, ""));
        if *first.get_or_insert(node) != node {
            break;
        }
        names.push(zone.trim().to_string());
    }
    names
}

/// `Page block order: N` of /proc/pagetypeinfo.
pub fn parse_pageblock_order(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|line| line.strip_prefix("Page block order:"))
        .and_then(|n| n.trim().parse().ok())
}

/// One zone of /proc/zoneinfo: its free pages and watermarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneInfo {
    pub node: u32,
    pub zone: String,
    pub free: u64,
    pub min: u64,
    pub low: u64,
    pub high: u64,
    /// `None` before Linux 5.0 (no watermark boost).
    pub boost: Option<u64>,
    pub managed: u64,
}

/// The zones of /proc/zoneinfo that manage memory (empty zones left out).
pub fn parse_zoneinfo(text: &str) -> Vec<ZoneInfo> {
    let mut zones: Vec<ZoneInfo> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Node ") {
            let (node, zone) = rest.split_once(", zone").unwrap_or((rest, ""));
            zones.push(ZoneInfo {
                node: node.trim().parse().unwrap_or(0),
                zone: zone.trim().to_string(),
                ..ZoneInfo::default()
            });
            continue;
        }
        let Some(zone) = zones.last_mut() else {
            continue;
        };
        let line = line.trim();
        let (key, value) = match line.strip_prefix("pages free") {
            Some(value) => ("free", value),
            None => line.split_once(char::is_whitespace).unwrap_or((line, "")),
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        match key {
            "free" => zone.free = value,
            "min" => zone.min = value,
            "low" => zone.low = value,
            "high" => zone.high = value,
            "boost" => zone.boost = Some(value),
            "managed" => zone.managed = value,
            _ => {}
        }
    }
    zones.retain(|zone| zone.managed > 0);
    zones
}

/// /proc/buddyinfo: free blocks per order (index = order) of each zone, by node and zone name.
pub fn parse_buddyinfo(text: &str) -> Vec<(u32, String, Vec<u64>)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Node ")?;
            let (node, rest) = rest.split_once(", zone")?;
            let mut fields = rest.split_whitespace();
            let zone = fields.next()?.to_string();
            let blocks: Vec<u64> = fields.map_while(|f| f.parse().ok()).collect();
            Some((node.trim().parse().ok()?, zone, blocks))
        })
        .collect()
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

    /// Linux 6.18 (this machine's, trimmed: per-node and per-zone counters, pagesets).
    const ZONEINFO_6_18: &str = "Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 499
      nr_free_pages 4187180
  pages free     3840
        boost    0
        min      10
        low      13
        high     16
        promo    19
        spanned  4095
        present  3998
        managed  3840
        cma      0
        protection: (0, 2991, 23963, 23963, 23963)
      nr_free_pages 3840
  pagesets
    cpu: 0
              count: 0
              high:  0
              batch: 1
  node_unreclaimable:  0
  start_pfn:           1
Node 0, zone   Normal
  pages free     4187180
        boost    1200
        min      14769
        low      20163
        high     25557
        promo    30951
        spanned  5505024
        present  5505024
        managed  5394266
        protection: (0, 0, 0, 0, 0)
Node 0, zone  Movable
  pages free     0
        boost    0
        min      32
        low      32
        high     32
        spanned  0
        present  0
        managed  0
";

    /// Linux 4.19, two nodes: no boost, no promo.
    const ZONEINFO_4_19: &str = "Node 0, zone    DMA32
  per-node stats
      nr_inactive_anon 1
  pages free     250000
        min      1000
        low      1250
        high     1500
        spanned  1044480
        present  782288
        managed  765917
        protection: (0, 0, 15006, 15006, 15006)
Node 1, zone   Normal
  pages free     812
        min      11265
        low      14081
        high     16897
        spanned  4194304
        present  4194304
        managed  4121032
";

    #[test]
    fn zoneinfo_watermarks_of_several_kernels() {
        let zones = parse_zoneinfo(ZONEINFO_6_18);
        assert_eq!(
            zones.len(),
            2,
            "the empty Movable zone is left out: {zones:?}"
        );
        assert_eq!(
            zones[1],
            ZoneInfo {
                node: 0,
                zone: "Normal".into(),
                free: 4_187_180,
                min: 14_769,
                low: 20_163,
                high: 25_557,
                boost: Some(1200),
                managed: 5_394_266,
            }
        );
        assert_eq!((zones[0].zone.as_str(), zones[0].free), ("DMA", 3840));
        let zones = parse_zoneinfo(ZONEINFO_4_19);
        assert_eq!(zones.len(), 2);
        assert_eq!((zones[1].node, zones[1].zone.as_str()), (1, "Normal"));
        assert_eq!(
            (zones[1].free, zones[1].min, zones[1].boost),
            (812, 11_265, None)
        );
        assert!(parse_zoneinfo("garbage\n  pages free x\n").is_empty());
    }

    #[test]
    fn zone_names_by_index_and_the_pageblock_order() {
        // Every zone of the first node, populated or not, in the kernel's order.
        let text = "Node 0, zone      DMA\n  pages free 3\nNode 0, zone    DMA32\n\
                    Node 0, zone   Normal\nNode 0, zone  Movable\nNode 0, zone   Device\n\
                    Node 1, zone      DMA\n";
        assert_eq!(
            parse_zone_names(text),
            ["DMA", "DMA32", "Normal", "Movable", "Device"]
        );
        assert!(parse_zone_names("").is_empty());
        let pagetypeinfo = "Page block order: 9\nPages per block:  512\n\nFree pages count";
        assert_eq!(parse_pageblock_order(pagetypeinfo), Some(9));
        assert_eq!(parse_pageblock_order("Page block order: x"), None);
    }

    #[test]
    fn buddyinfo_blocks_per_order() {
        let text = "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 \n\
                    Node 0, zone   Normal   8036   5734  20344  11172   5445   3125   1911   1105    612    797   2833 \n\
                    Node 1, zone   Normal      1      2\n\
                    garbage\n";
        let zones = parse_buddyinfo(text);
        assert_eq!(zones.len(), 3);
        assert_eq!(zones[0].2, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3]);
        assert_eq!((zones[1].1.as_str(), zones[1].2[10]), ("Normal", 2833));
        assert_eq!((zones[2].0, zones[2].2.clone()), (1, vec![1, 2]));
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
