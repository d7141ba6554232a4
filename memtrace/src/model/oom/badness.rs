//! The kernel's OOM arithmetic (mm/oom_kill.c, mm/memcontrol.c), as plain functions:
//!
//! - `oom_badness()`: `rss + swap entries + pgtables_bytes / PAGE_SIZE + adj * (totalpages / 1000)`
//!   (the division happens first, in integers).
//! - `totalpages`: `mem_cgroup_get_max()` for a memcg OOM, `totalram_pages() + total_swap_pages`
//!   for a global one, swap plus the allowed nodes' present pages for cpuset/mempolicy ones.
//! - `/proc/PID/oom_score`: `1000 + badness * 1000 / totalpages`, always with the global total.

/// A task's badness inputs, in pages (pgtables in bytes), as the kernel counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BadnessInputs {
    /// `mm->rss_stat` counters (pages).
    pub rss_file_pages: i64,
    pub rss_anon_pages: i64,
    pub rss_shmem_pages: i64,
    pub swap_entries: i64,
    /// `mm->pgtables_bytes`.
    pub pgtables_bytes: u64,
    /// `signal->oom_score_adj`.
    pub oom_score_adj: i32,
}

impl BadnessInputs {
    /// `get_mm_rss()`: file + anon + shmem pages.
    pub fn rss_pages(&self) -> i64 {
        self.rss_file_pages + self.rss_anon_pages + self.rss_shmem_pages
    }
}

/// `oom_badness()` in a domain of `totalpages` pages.
pub fn points(inputs: &BadnessInputs, totalpages: u64, page_size: u64) -> i64 {
    let pgtables = i64::try_from(inputs.pgtables_bytes / page_size.max(1)).unwrap_or(i64::MAX);
    let unit = i64::try_from(totalpages / 1000).unwrap_or(i64::MAX);
    inputs
        .rss_pages()
        .saturating_add(inputs.swap_entries)
        .saturating_add(pgtables)
        .saturating_add(i64::from(inputs.oom_score_adj).saturating_mul(unit))
}

/// Points per thousand pages of the domain: `oom_score`'s scale, in the right domain.
pub fn per_mille(points: i64, totalpages: u64) -> i64 {
    let total = i64::try_from(totalpages.max(1)).unwrap_or(i64::MAX);
    points.saturating_mul(1000) / total
}

/// What `/proc/PID/oom_score` shows: badness against RAM + swap, offset by 1000 (0..2000).
pub fn proc_oom_score(inputs: &BadnessInputs, global_pages: u64, page_size: u64) -> i64 {
    1000 + per_mille(points(inputs, global_pages, page_size), global_pages)
}

/// `PAGE_COUNTER_MAX` is `LONG_MAX / PAGE_SIZE`: anything this large is "no limit".
pub fn is_unlimited(max_pages: u64) -> bool {
    max_pages >= 1 << 50
}

/// A memcg's limits as `mem_cgroup_get_max()` reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemcgMax {
    /// `memory.max` in pages.
    pub memory_pages: u64,
    /// `memsw.max` (cgroup v1: memory + swap) or `swap.max` (v2), in pages.
    pub swap_counter_pages: u64,
    /// cgroup v1 (memsw accounting) or v2.
    pub v1: bool,
    /// The swappiness the kernel uses for this memcg (v1: the memcg's own, except for the root;
    /// v2: vm.swappiness).
    pub swappiness: u32,
}

/// `mem_cgroup_get_max()`: the limit, plus the swap the memcg may use when it may swap at all.
pub fn memcg_totalpages(max: &MemcgMax, total_swap_pages: u64) -> u64 {
    let mut pages = max.memory_pages;
    if max.swappiness != 0 {
        let swap = if max.v1 {
            // memsw.max is memory + swap and never below memory.max.
            max.swap_counter_pages.saturating_sub(max.memory_pages)
        } else {
            max.swap_counter_pages
        };
        pages = pages.saturating_add(swap.min(total_swap_pages));
    }
    pages.max(1)
}

/// A global OOM's domain: `totalram_pages() + total_swap_pages`.
pub fn global_totalpages(ram_pages: u64, total_swap_pages: u64) -> u64 {
    ram_pages.saturating_add(total_swap_pages).max(1)
}

/// A cpuset or mempolicy OOM's domain: swap plus the present pages of the allowed nodes.
pub fn nodes_totalpages(node_present_pages: &[u64], total_swap_pages: u64) -> u64 {
    node_present_pages
        .iter()
        .fold(total_swap_pages, |sum, &n| sum.saturating_add(n))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    fn hog(rss_anon_pages: i64, adj: i32) -> BadnessInputs {
        BadnessInputs {
            rss_anon_pages,
            rss_file_pages: 200,
            pgtables_bytes: 40 * PAGE,
            oom_score_adj: adj,
            ..BadnessInputs::default()
        }
    }

    #[test]
    fn points_follow_oom_badness() {
        // 48 MiB memcg: 12288 pages, so one adj unit is 12288 / 1000 = 12 pages.
        assert_eq!(points(&hog(11_000, 0), 12_288, PAGE), 11_000 + 200 + 40);
        assert_eq!(
            points(&hog(6_000, 500), 12_288, PAGE),
            6_000 + 200 + 40 + 500 * 12
        );
        assert_eq!(points(&hog(6_000, -1000), 12_288, PAGE), 6_240 - 12_000);
        let swapped = BadnessInputs {
            swap_entries: 300,
            rss_shmem_pages: 7,
            ..hog(100, 0)
        };
        assert_eq!(points(&swapped, 1_000_000, PAGE), 100 + 200 + 7 + 300 + 40);
        // Partial pages of page tables do not count.
        let odd = BadnessInputs {
            pgtables_bytes: PAGE + 100,
            ..BadnessInputs::default()
        };
        assert_eq!(points(&odd, 5000, PAGE), 1);
    }

    #[test]
    fn the_adjustment_is_rounded_per_thousand_pages_first() {
        // 999 pages: totalpages / 1000 is 0, so adj has no effect at all.
        assert_eq!(points(&hog(10, 1000), 999, PAGE), 10 + 200 + 40);
    }

    #[test]
    fn memcg_totalpages_with_and_without_swap() {
        let v1_no_swap = MemcgMax {
            memory_pages: 12_288,
            swap_counter_pages: 12_288,
            v1: true,
            swappiness: 60,
        };
        assert_eq!(memcg_totalpages(&v1_no_swap, 262_144), 12_288);
        let v1_swap = MemcgMax {
            swap_counter_pages: 12_288 + 4_096,
            ..v1_no_swap
        };
        assert_eq!(memcg_totalpages(&v1_swap, 262_144), 16_384);
        // The swap the memcg may use is capped by the swap that exists.
        assert_eq!(memcg_totalpages(&v1_swap, 1_000), 13_288);
        // Unlimited memsw: memory.max plus all the swap there is.
        let v1_unlimited = MemcgMax {
            swap_counter_pages: (1 << 51) - 1,
            ..v1_no_swap
        };
        assert_eq!(memcg_totalpages(&v1_unlimited, 5_000), 17_288);
        // swappiness 0: the memcg never swaps, so swap is not counted.
        let v1_never = MemcgMax {
            swappiness: 0,
            ..v1_swap
        };
        assert_eq!(memcg_totalpages(&v1_never, 262_144), 12_288);
        // cgroup v2: swap.max counts swap alone.
        let v2 = MemcgMax {
            memory_pages: 12_288,
            swap_counter_pages: 2_048,
            v1: false,
            swappiness: 60,
        };
        assert_eq!(memcg_totalpages(&v2, 262_144), 14_336);
        assert_eq!(
            memcg_totalpages(
                &MemcgMax {
                    memory_pages: 0,
                    ..v2
                },
                0
            ),
            1
        );
    }

    #[test]
    fn global_and_node_domains() {
        assert_eq!(global_totalpages(6_000_000, 262_144), 6_262_144);
        assert_eq!(global_totalpages(0, 0), 1);
        assert_eq!(nodes_totalpages(&[1_000, 2_000], 500), 3_500);
    }

    #[test]
    fn scores_per_mille_and_proc_oom_score() {
        assert_eq!(per_mille(12_000, 12_288), 976);
        assert_eq!(per_mille(-500, 1000), -500);
        // The same 12k-page hog is nearly nothing machine-wide: oom_score about 1000 + 1.
        let inputs = hog(11_760, 0);
        assert_eq!(proc_oom_score(&inputs, 6_262_144, PAGE), 1001);
        assert!(is_unlimited((1 << 51) - 1) && !is_unlimited(12_288));
    }
}
