//! The noise rule of `memtrace diff`: when two runs' figures differ by more than chance.
//!
//! Each run's figure gets a band from the run's own interval-to-interval spread; a figure
//! differs only when the two runs' bands do not overlap, the larger figure is at least
//! [`MIN_RATIO`] times the smaller, and there were enough events to say anything:
//!
//! - A rate or a share is the length-weighted mean of its per-interval values (idle intervals
//!   count, as zeros), so its band is the figure ± [`MEAN_BAND_SE`] standard errors of that
//!   mean (`sqrt(var / n)`, with the weighted sample variance of the per-interval values and
//!   the effective number of intervals). The per-interval spread itself would call every
//!   phased workload noise: a run with swap-ins in a third of its intervals has a spread larger
//!   than its mean, yet differs plainly from a run without any.
//! - A percentile or the maximum is not a mean: the whole run's p99 is a mixture of the
//!   intervals' distributions, which shifts with the mix of busy and quiet intervals. Its band
//!   is the interquartile range of the per-interval values (intervals with events only): the
//!   middle half of the run's intervals. Two runs whose middle halves overlap are not told
//!   apart, however far their extremes (the whole run's maximum is always the top of its own
//!   intervals, so comparing the extremes themselves would flag every pair of runs).
//! - Bands need two intervals or more; a percentile needs enough events in both runs to be
//!   more than their few largest values ([`Figure::min_events`]).
//!
//! The minimum ratio stands for what no interval of one run can show: the difference between
//! runs. Standard errors shrink as runs grow longer, but two runs of the same load differ by
//! more than sampling noise (other load on the machine, caches, timing). On this project's
//! 2-core test machine, with builds running beside them, identical sandboxed loads recorded
//! back to back faulted at rates up to 1.46 times apart (15 against 21 runs of the load in
//! 3 s); a tighter memcg limit moved the figures it touches (reclaim rate and share, swap-outs)
//! by 1.6 to 4 times, swap-ins from none.
use serde::{Deserialize, Serialize};

/// The larger figure must be at least this many times the smaller to differ (+50 %, -33 %).
pub const MIN_RATIO: f64 = 1.5;
/// Half-width of a mean's band, in standard errors (about 95 % for a normal mean).
pub const MEAN_BAND_SE: f64 = 2.0;
/// Events a row needs in one of the runs before its rate and share are judged.
pub const MIN_EVENTS: u64 = 10;

/// One figure of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Events (or pages) per second of the run.
    RatePerS,
    /// Time in these events over the run's duration.
    Share,
    P50Ns,
    P99Ns,
    P999Ns,
    MaxNs,
}

impl Figure {
    /// The figures of a process row, in display order.
    pub const PROCESS: [Self; 6] = [
        Self::RatePerS,
        Self::Share,
        Self::P50Ns,
        Self::P99Ns,
        Self::P999Ns,
        Self::MaxNs,
    ];

    /// A mean of per-interval values (rate, share), rather than a quantile.
    pub fn is_mean(self) -> bool {
        matches!(self, Self::RatePerS | Self::Share)
    }

    /// Events each run needs before the figure is judged: a percentile q needs 10 events
    /// beyond it (`10 / (1 - q)`), or it is only the largest few values.
    pub fn min_events(self) -> u64 {
        match self {
            Self::RatePerS | Self::Share => MIN_EVENTS,
            Self::P50Ns | Self::MaxNs => 20,
            Self::P99Ns => 1_000,
            Self::P999Ns => 10_000,
        }
    }
}

/// What the rule says of one figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Beyond both runs' noise.
    Differs,
    /// Within it.
    Noise,
    /// Too few events or intervals to tell.
    TooFew,
}

/// Weighted sums of one mean-type figure's per-interval values. Intervals where the value was
/// 0 add nothing; the run's [`Weights`] count them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    /// Σ w·x and Σ w·x².
    pub wx: f64,
    pub wx2: f64,
}

impl Moments {
    /// Adds the value `x` of an interval of weight `w`.
    pub fn add(&mut self, w: f64, x: f64) {
        self.wx += w * x;
        self.wx2 += w * x * x;
    }
}

/// A run's intervals as weights (their lengths in seconds): Σ w, Σ w² and how many.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Weights {
    pub w: f64,
    pub w2: f64,
    pub intervals: u64,
}

impl Weights {
    /// Adds an interval of weight `w`.
    pub fn add(&mut self, w: f64) {
        self.w += w;
        self.w2 += w * w;
        self.intervals += 1;
    }
}

/// A mean-type figure's band around its value `mean`: ± [`MEAN_BAND_SE`] standard errors of
/// the weighted mean; `None` with fewer than two intervals (no spread to measure).
pub fn mean_band(mean: f64, m: &Moments, weights: &Weights) -> Option<Band> {
    if weights.intervals < 2 || weights.w <= 0.0 {
        return None;
    }
    // Reliability weights: var = Σw(x - x̄)² / (Σw - Σw²/Σw), and the mean's variance is
    // var·Σw²/(Σw)²; with equal weights these are the textbook s² and s²/n.
    let x_bar = m.wx / weights.w;
    let squares = (m.wx2 - m.wx * x_bar).max(0.0);
    let dof = weights.w - weights.w2 / weights.w;
    if dof <= 0.0 {
        return None;
    }
    let half = MEAN_BAND_SE * (squares / dof * weights.w2).sqrt() / weights.w;
    Some(Band {
        lo: mean - half,
        hi: mean + half,
    })
}

/// A quantile-type figure's band: the interquartile range of its per-interval values;
/// `None` with fewer than two.
pub fn spread_band(values: &[f64]) -> Option<Band> {
    if values.len() < 2 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(Band {
        lo: quantile(&sorted, 0.25),
        hi: quantile(&sorted, 0.75),
    })
}

/// The `q` quantile of sorted values, interpolated between neighbours (R's type 7, the
/// default of R and NumPy).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

/// Where a run's figure could as well have been, by its own intervals.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub lo: f64,
    pub hi: f64,
}

/// One figure of both runs, with the bands that judge it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub a: f64,
    pub b: f64,
    pub band_a: Option<Band>,
    pub band_b: Option<Band>,
}

/// The rule: `Differs` when the bands do not overlap and the larger figure is at least
/// [`MIN_RATIO`] times the smaller; `TooFew` without `enough` events or without both bands.
pub fn judge(pair: &Pair, enough: bool) -> Verdict {
    let (Some(band_a), Some(band_b)) = (pair.band_a, pair.band_b) else {
        return Verdict::TooFew;
    };
    if !enough {
        return Verdict::TooFew;
    }
    let apart = band_a.hi < band_b.lo || band_b.hi < band_a.lo;
    let (low, high) = (pair.a.min(pair.b), pair.a.max(pair.b));
    let ratio = high > 0.0 && high >= low * MIN_RATIO;
    if apart && ratio {
        Verdict::Differs
    } else {
        Verdict::Noise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-9 * want.abs().max(1.0)
    }

    /// The moments and weights of a series of (length in s, value).
    fn series(points: &[(f64, f64)]) -> (Moments, Weights) {
        let mut m = Moments::default();
        let mut w = Weights::default();
        for &(len, x) in points {
            m.add(len, x);
            w.add(len);
        }
        (m, w)
    }

    /// The half-width of the mean band of a series, around its own mean.
    fn half_width(points: &[(f64, f64)]) -> f64 {
        let (m, w) = series(points);
        let band = mean_band(m.wx / w.w, &m, &w).expect("two intervals or more");
        assert!(
            close(band.hi - m.wx / w.w, m.wx / w.w - band.lo),
            "symmetric"
        );
        (band.hi - band.lo) / 2.0
    }

    #[test]
    fn equal_intervals_give_the_textbook_standard_error() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample variance 32/7, s.e. sqrt(32/7/8).
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let points: Vec<(f64, f64)> = values.iter().map(|&x| (1.0, x)).collect();
        let band = mean_band(5.0, &series(&points).0, &series(&points).1).expect("band");
        let half = 2.0 * (32.0f64 / 7.0 / 8.0).sqrt();
        assert!(
            close(band.lo, 5.0 - half) && close(band.hi, 5.0 + half),
            "{band:?}"
        );
        // Intervals of 0.1 s: the same values, the same band.
        let short: Vec<(f64, f64)> = values.iter().map(|&x| (0.1, x)).collect();
        assert!(close(half_width(&short), half));
    }

    #[test]
    fn the_band_is_centred_on_the_figure_given() {
        // The whole run's rate comes from the recorder's own duration, a little different
        // from the intervals' sum: the band follows the figure.
        let (m, w) = series(&[(1.0, 4.0), (1.0, 6.0)]);
        let band = mean_band(5.5, &m, &w).expect("band");
        assert!(close(band.hi - 5.5, 5.5 - band.lo));
        // s = sqrt(2), s.e. = 1.
        assert!(close(band.hi, 7.5), "{band:?}");
    }

    #[test]
    fn idle_intervals_count_as_zeros_through_the_weights() {
        // Busy at 30 and 60 in two of four 1 s intervals: mean 22.5, values 30, 60, 0, 0.
        let (m, _) = series(&[(1.0, 30.0), (1.0, 60.0)]);
        let mut w = Weights::default();
        for _ in 0..4 {
            w.add(1.0);
        }
        let explicit = [(1.0, 30.0), (1.0, 60.0), (1.0, 0.0), (1.0, 0.0)];
        assert_eq!(mean_band(22.5, &m, &w), {
            let (m, w) = series(&explicit);
            mean_band(22.5, &m, &w)
        });
        // var = (7.5² + 37.5² + 22.5² + 22.5²) / 3 = 825, s.e. = sqrt(825 / 4).
        assert!(close(half_width(&explicit), 2.0 * (825.0f64 / 4.0).sqrt()));
        let zeros = mean_band(0.0, &Moments::default(), &w);
        assert_eq!(
            zeros,
            Some(Band { lo: 0.0, hi: 0.0 }),
            "always 0: no spread"
        );
    }

    #[test]
    fn a_short_last_interval_weighs_less() {
        // Three full intervals at 10 and a 10 ms tail at 1000 (10 events in 10 ms).
        let weighted = [(1.0, 10.0), (1.0, 10.0), (1.0, 10.0), (0.01, 1000.0)];
        let (m, w) = series(&weighted);
        assert!(close(m.wx / w.w, 40.0 / 3.01), "the run's own rate");
        let loud = [(1.0, 10.0), (1.0, 10.0), (1.0, 10.0), (1.0, 1000.0)];
        let (quiet, loud) = (half_width(&weighted), half_width(&loud));
        assert!(quiet < loud / 5.0, "{quiet} against {loud}");
    }

    #[test]
    fn one_interval_has_no_band() {
        let (m, w) = series(&[(1.0, 5.0)]);
        assert_eq!(mean_band(5.0, &m, &w), None);
        assert_eq!(
            mean_band(0.0, &Moments::default(), &Weights::default()),
            None
        );
        assert_eq!(spread_band(&[3.0]), None);
        assert_eq!(spread_band(&[]), None);
    }

    #[test]
    fn quartiles_interpolate_like_r_and_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile(&sorted, 0.25), 2.0);
        assert_eq!(quantile(&sorted, 0.5), 3.0);
        assert_eq!(quantile(&sorted, 0.75), 4.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.25), 1.25);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        // Unsorted input is sorted first; the outlier does not widen the band.
        assert_eq!(
            spread_band(&[10.0, 4.0, 1.0, 3.0, 2.0]),
            Some(Band { lo: 2.0, hi: 4.0 })
        );
    }

    fn pair(a: f64, b: f64, band_a: (f64, f64), band_b: (f64, f64)) -> Pair {
        let band = |(lo, hi)| Some(Band { lo, hi });
        Pair {
            a,
            b,
            band_a: band(band_a),
            band_b: band(band_b),
        }
    }

    #[test]
    fn a_figure_differs_only_beyond_both_bands_and_the_minimum_ratio() {
        // 100 ± 20 against 160 ± 20: apart, ratio 1.6, either way round.
        let judged = |p: Pair| judge(&p, true);
        assert_eq!(
            judged(pair(100.0, 160.0, (80.0, 120.0), (140.0, 180.0))),
            Verdict::Differs
        );
        assert_eq!(
            judged(pair(160.0, 100.0, (140.0, 180.0), (80.0, 120.0))),
            Verdict::Differs
        );
        // Bands that touch overlap: noise.
        assert_eq!(
            judged(pair(100.0, 160.0, (70.0, 140.0), (140.0, 180.0))),
            Verdict::Noise
        );
        // Far beyond tight bands, but only 46 % apart: noise.
        assert_eq!(
            judged(pair(100.0, 146.0, (99.0, 101.0), (145.0, 147.0))),
            Verdict::Noise
        );
        // Exactly the minimum ratio counts.
        assert_eq!(
            judged(pair(100.0, 150.0, (99.0, 101.0), (149.0, 151.0))),
            Verdict::Differs
        );
        // From nothing to something, beyond the new run's band; and within it.
        assert_eq!(
            judged(pair(0.0, 50.0, (0.0, 0.0), (30.0, 70.0))),
            Verdict::Differs
        );
        assert_eq!(
            judged(pair(0.0, 50.0, (0.0, 0.0), (-10.0, 110.0))),
            Verdict::Noise
        );
        assert_eq!(
            judged(pair(0.0, 0.0, (0.0, 0.0), (0.0, 0.0))),
            Verdict::Noise
        );
        // A maximum far above both runs' typical intervals, whose middle halves overlap.
        assert_eq!(
            judged(pair(94.0, 70.0, (3.0, 20.0), (4.0, 18.0))),
            Verdict::Noise
        );
    }

    #[test]
    fn too_few_events_or_intervals_are_never_a_difference() {
        let apart = pair(0.0, 500.0, (0.0, 0.0), (400.0, 600.0));
        assert_eq!(judge(&apart, false), Verdict::TooFew);
        let no_band = Pair {
            band_a: None,
            ..apart
        };
        assert_eq!(judge(&no_band, true), Verdict::TooFew);
        assert_eq!(Figure::P99Ns.min_events(), 1_000);
        assert_eq!(Figure::P999Ns.min_events(), 10_000);
        assert!(Figure::Share.is_mean() && !Figure::MaxNs.is_mean());
    }

    /// A phased run (swap-ins in a third of 30 intervals) against one without any: the
    /// per-interval spread is larger than the mean, the standard error is not.
    #[test]
    fn a_phased_run_differs_from_an_idle_one() {
        let busy: Vec<(f64, f64)> = (0..30)
            .map(|i: u32| (0.1, if i.is_multiple_of(3) { 30_000.0 } else { 0.0 }))
            .collect();
        let (m, w) = series(&busy);
        let mean = m.wx / w.w;
        assert!(close(mean, 10_000.0), "{mean}");
        let values: Vec<f64> = busy.iter().map(|p| p.1).collect();
        let iqr = spread_band(&values).expect("band");
        assert!(
            iqr.hi - iqr.lo >= mean,
            "the spread alone would call it noise: {iqr:?}"
        );
        let idle = series(&[(0.1, 0.0); 30]);
        let judged = judge(
            &Pair {
                a: 0.0,
                b: mean,
                band_a: mean_band(0.0, &idle.0, &idle.1),
                band_b: mean_band(mean, &m, &w),
            },
            true,
        );
        assert_eq!(judged, Verdict::Differs);
    }
}
