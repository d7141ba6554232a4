//! Medians, paired ratios and spreads: the arithmetic behind every figure of the benchmark.

/// The median of `values` (mean of the middle two for an even count); None when empty or
/// when a value is not a number.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// Smallest and largest of `values`; None when empty or when a value is not a number.
pub fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    if values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

/// One measurement without (`base`) and with (`test`) the thing being measured, taken
/// back to back so that slow drift of the machine affects both alike.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub base: f64,
    pub test: f64,
}

/// What a series of pairs says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedSummary {
    /// Pairs that entered the summary (those with a positive, finite base and test).
    pub pairs: usize,
    pub base_median: f64,
    pub test_median: f64,
    /// Median of the per-pair ratios test / base (not the ratio of the medians: each ratio
    /// compares two runs that saw the same state of the machine).
    pub ratio_median: f64,
    pub ratio_min: f64,
    pub ratio_max: f64,
    /// Median of the per-pair differences test − base, in the unit of the values.
    pub diff_median: f64,
    /// Pairs whose test was slower (larger) than their base: about half of them when the
    /// difference is only noise.
    pub slower: usize,
}

impl PairedSummary {
    /// The slowdown in percent: +5.0 means 5 % slower with the tracer.
    pub fn overhead_pct(&self) -> f64 {
        (self.ratio_median - 1.0) * 100.0
    }
}

/// Summarises pairs; pairs with a zero, negative or non-finite value are left out (a failed
/// run), and None comes back when none is left.
pub fn paired(pairs: &[Pair]) -> Option<PairedSummary> {
    let valid = |v: f64| v.is_finite() && v > 0.0;
    let good: Vec<Pair> = pairs
        .iter()
        .copied()
        .filter(|p| valid(p.base) && valid(p.test))
        .collect();
    let ratios: Vec<f64> = good.iter().map(|p| p.test / p.base).collect();
    let bases: Vec<f64> = good.iter().map(|p| p.base).collect();
    let tests: Vec<f64> = good.iter().map(|p| p.test).collect();
    let diffs: Vec<f64> = good.iter().map(|p| p.test - p.base).collect();
    let (ratio_min, ratio_max) = min_max(&ratios)?;
    Some(PairedSummary {
        pairs: good.len(),
        base_median: median(&bases)?,
        test_median: median(&tests)?,
        ratio_median: median(&ratios)?,
        ratio_min,
        ratio_max,
        diff_median: median(&diffs)?,
        slower: diffs.iter().filter(|d| **d > 0.0).count(),
    })
}

/// How far the runs of one condition stray from their median, as ratios (min / median,
/// max / median): the noise of the machine when nothing is traced.
pub fn spread_around_median(values: &[f64]) -> Option<(f64, f64)> {
    let mid = median(values)?;
    let (min, max) = min_max(values)?;
    (mid > 0.0).then(|| (min / mid, max / mid))
}

/// A distribution-free interval for the median of `values` at `confidence` (e.g. 0.9): the
/// order statistics `x(k)` and `x(n+1-k)` with the largest `k` for which a median outside them is
/// no likelier than `1 - confidence` (the binomial sign-test interval). None when the values are
/// too few for that confidence (fewer than 5 at 90 %) or one is not a number.
pub fn median_interval(values: &[f64], confidence: f64) -> Option<(f64, f64)> {
    if values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let n = values.len();
    let tail = (1.0 - confidence) / 2.0;
    // P(B <= i) for B ~ Binomial(n, 1/2), term by term: C(n, i) / 2^n.
    let mut term = 0.5f64.powi(n as i32);
    let mut below = 0.0;
    let mut k = 0;
    for i in 0..n {
        below += term;
        if below > tail {
            break;
        }
        // x(i+1) is a lower bound: the median lies below it with probability P(B <= i).
        k = i + 1;
        term *= (n - i) as f64 / (i + 1) as f64;
    }
    if k == 0 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some((sorted[k - 1], sorted[n - k]))
}

/// Events per second; 0 for an empty window.
pub fn rate(events: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        events as f64 / seconds
    } else {
        0.0
    }
}

/// CPU seconds spent per million events; None without events.
pub fn cpu_s_per_million(cpu_s: f64, events: u64) -> Option<f64> {
    (events > 0).then(|| cpu_s / (events as f64 / 1e6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn extremes() {
        assert_eq!(min_max(&[]), None);
        assert_eq!(min_max(&[2.0, -1.0, 7.0]), Some((-1.0, 7.0)));
    }

    #[test]
    fn paired_ratios_are_per_pair() {
        let pairs = [
            Pair {
                base: 100.0,
                test: 105.0,
            },
            Pair {
                base: 200.0,
                test: 200.0,
            },
            Pair {
                base: 100.0,
                test: 110.0,
            },
        ];
        let s = paired(&pairs).expect("summary");
        assert_eq!(s.pairs, 3);
        assert_eq!(s.base_median, 100.0);
        assert_eq!(s.test_median, 110.0);
        assert!((s.ratio_median - 1.05).abs() < 1e-12);
        assert_eq!(s.ratio_min, 1.0);
        assert!((s.ratio_max - 1.1).abs() < 1e-12);
        assert!((s.overhead_pct() - 5.0).abs() < 1e-9);
        assert_eq!(s.diff_median, 5.0);
        assert_eq!(s.slower, 2);
    }

    #[test]
    fn failed_runs_are_left_out() {
        let pairs = [
            Pair {
                base: 0.0,
                test: 1.0,
            },
            Pair {
                base: 1.0,
                test: f64::INFINITY,
            },
        ];
        assert_eq!(paired(&pairs), None);
        let one = [
            Pair {
                base: 2.0,
                test: 3.0,
            },
            pairs[0],
        ];
        assert_eq!(paired(&one).map(|s| s.pairs), Some(1));
    }

    #[test]
    fn noise_spread() {
        let (lo, hi) = spread_around_median(&[9.0, 10.0, 12.0]).expect("spread");
        assert!((lo - 0.9).abs() < 1e-12);
        assert!((hi - 1.2).abs() < 1e-12);
        assert_eq!(spread_around_median(&[0.0, 0.0]), None);
    }

    #[test]
    fn median_intervals_follow_the_sign_test() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        // n = 10: P(B <= 1) = 11/1024 <= 5 %, P(B <= 2) = 56/1024 > 5 %: x(2) and x(9).
        assert_eq!(median_interval(&values, 0.9), Some((2.0, 9.0)));
        // At 98 %, P(B <= 0) = 1/1024 <= 1 % but P(B <= 1) > 1 %: x(1) and x(10).
        assert_eq!(median_interval(&values, 0.98), Some((1.0, 10.0)));
        // Five values are the fewest for 90 % (1/32 <= 5 %), four too few (1/16 > 5 %).
        assert_eq!(
            median_interval(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.9),
            Some((1.0, 5.0))
        );
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0], 0.9), None);
        assert_eq!(median_interval(&[], 0.9), None);
        assert_eq!(median_interval(&[1.0, f64::NAN, 2.0, 3.0, 4.0], 0.9), None);
        // 45 values: P(B <= 16) = 3.6 % <= 5 %, P(B <= 17) = 6.8 % > 5 %: x(17) and x(29).
        let many: Vec<f64> = (1..=45).map(f64::from).collect();
        assert_eq!(median_interval(&many, 0.9), Some((17.0, 29.0)));
    }

    #[test]
    fn rates_and_cpu() {
        assert_eq!(rate(1_000, 0.5), 2_000.0);
        assert_eq!(rate(1_000, 0.0), 0.0);
        assert_eq!(cpu_s_per_million(0.25, 500_000), Some(0.5));
        assert_eq!(cpu_s_per_million(1.0, 0), None);
    }
}
