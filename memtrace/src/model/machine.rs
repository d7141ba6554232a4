//! The machine's context for an interval, from two machine samples: memory pressure (PSI),
//! free memory, swap use and rates. Pure arithmetic; the sampling is in `collect::machine`.

use crate::samples::machine::MachineSample;

/// The machine during one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MachineInterval {
    /// Share of the interval in which some (full: all) tasks stalled on memory, in %.
    pub psi_some_pct: Option<f64>,
    pub psi_full_pct: Option<f64>,
    pub mem_free_kb: u64,
    pub mem_available_kb: u64,
    pub swap_used_kb: u64,
    /// Pages per second swapped in and out, machine-wide.
    pub pswpin_per_s: f64,
    pub pswpout_per_s: f64,
    /// Direct-reclaim entries in the interval, machine-wide.
    pub allocstalls: u64,
}

impl MachineInterval {
    /// This interval and the one after it as one: shares and rates weighted by the lengths,
    /// levels (free, available, swap used) as at the end, direct-reclaim entries added.
    pub fn combine(&self, next: &Self, len_ns: u64, next_len_ns: u64) -> Self {
        let total = (len_ns + next_len_ns).max(1) as f64;
        let weigh = |a: f64, b: f64| (a * len_ns as f64 + b * next_len_ns as f64) / total;
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(weigh(a, b)),
            (a, b) => a.or(b),
        };
        Self {
            psi_some_pct: pct(self.psi_some_pct, next.psi_some_pct),
            psi_full_pct: pct(self.psi_full_pct, next.psi_full_pct),
            mem_free_kb: next.mem_free_kb,
            mem_available_kb: next.mem_available_kb,
            swap_used_kb: next.swap_used_kb,
            pswpin_per_s: weigh(self.pswpin_per_s, next.pswpin_per_s),
            pswpout_per_s: weigh(self.pswpout_per_s, next.pswpout_per_s),
            allocstalls: self.allocstalls + next.allocstalls,
        }
    }

    /// The interval between two readings.
    pub fn between(prev: &MachineSample, cur: &MachineSample) -> Self {
        let len_ns = cur.mono_ns.saturating_sub(prev.mono_ns);
        let secs = len_ns as f64 / 1e9;
        let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if len_ns > 0 => {
                Some(b.saturating_sub(a) as f64 * 1000.0 * 100.0 / len_ns as f64)
            }
            _ => None,
        };
        let rate = |a: u64, b: u64| {
            if secs > 0.0 {
                b.saturating_sub(a) as f64 / secs
            } else {
                0.0
            }
        };
        Self {
            psi_some_pct: pct(prev.psi_some_us, cur.psi_some_us).map(|p| p.min(100.0)),
            psi_full_pct: pct(prev.psi_full_us, cur.psi_full_us).map(|p| p.min(100.0)),
            mem_free_kb: cur.mem_free_kb,
            mem_available_kb: cur.mem_available_kb,
            swap_used_kb: cur.swap_total_kb.saturating_sub(cur.swap_free_kb),
            pswpin_per_s: rate(prev.pswpin, cur.pswpin),
            pswpout_per_s: rate(prev.pswpout, cur.pswpout),
            allocstalls: cur.allocstall.saturating_sub(prev.allocstall),
        }
    }
}

/// `part` as a percentage of `whole`.
pub fn share_pct(part_ns: u64, whole_ns: u64) -> f64 {
    if whole_ns == 0 {
        0.0
    } else {
        part_ns as f64 * 100.0 / whole_ns as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::machine::{MachineSample, Thresholds};

    #[test]
    fn rates_and_psi_shares_over_one_second() {
        let prev = MachineSample {
            mono_ns: 1_000_000_000,
            psi_some_us: Some(1_000),
            psi_full_us: Some(0),
            pswpin: 10,
            pswpout: 100,
            allocstall: 5,
            ..Default::default()
        };
        let cur = MachineSample {
            mono_ns: 2_000_000_000,
            psi_some_us: Some(411_000),
            psi_full_us: Some(120_000),
            swap_total_kb: 1000,
            swap_free_kb: 400,
            pswpin: 510,
            pswpout: 2100,
            allocstall: 8,
            ..Default::default()
        };
        let m = MachineInterval::between(&prev, &cur);
        assert_eq!(m.psi_some_pct, Some(41.0));
        assert_eq!(m.psi_full_pct, Some(12.0));
        assert_eq!((m.pswpin_per_s, m.pswpout_per_s), (500.0, 2000.0));
        assert_eq!((m.swap_used_kb, m.allocstalls), (600, 3));
    }

    #[test]
    fn two_intervals_combine_weighted_by_their_lengths() {
        let a = MachineInterval {
            psi_some_pct: Some(10.0),
            pswpin_per_s: 100.0,
            mem_free_kb: 5,
            allocstalls: 2,
            ..Default::default()
        };
        let b = MachineInterval {
            psi_some_pct: Some(40.0),
            pswpin_per_s: 400.0,
            mem_free_kb: 3,
            allocstalls: 1,
            ..Default::default()
        };
        let c = a.combine(&b, 2, 1);
        assert_eq!(c.psi_some_pct, Some(20.0));
        assert_eq!(c.pswpin_per_s, 200.0);
        assert_eq!((c.mem_free_kb, c.allocstalls), (3, 3));
        assert_eq!(c.psi_full_pct, None);
    }

    #[test]
    fn no_psi_means_no_psi_share() {
        let m = MachineInterval::between(
            &MachineSample::default(),
            &MachineSample {
                mono_ns: 1,
                ..Default::default()
            },
        );
        assert_eq!(m.psi_some_pct, None);
    }

    #[test]
    fn thresholds_flag_on_either_signal() {
        let t = Thresholds {
            stall_pct: 10.0,
            psi_pct: 20.0,
        };
        assert!(t.flags(10.0, None));
        assert!(!t.flags(9.9, Some(19.9)));
        assert!(t.flags(0.0, Some(20.0)));
        assert_eq!(share_pct(250, 1000), 25.0);
        assert_eq!(share_pct(1, 0), 0.0);
    }
}
