//! A latency distribution kept for exposition: cumulative counts in fixed classic buckets and in
//! a native (exponential, sparse) histogram, both filled from memtrace's HdrHistograms.
//!
//! Classic buckets: the upper bounds are the powers of two from 2^8 ns (256 ns) to 2^34 ns
//! (17.2 s), the boundaries of HdrHistogram's own buckets. At 3 significant digits an
//! HdrHistogram value below 2048 ns is exact and above it keeps 11 significant bits, so every
//! recorded value lies wholly inside one classic bucket: the classic counts are exact
//! re-bucketings, never interpolations. A quantile read from them (`histogram_quantile`) is off
//! by at most the width of its bucket, a factor of two.
//!
//! Native buckets use schema [`NATIVE_SCHEMA`] (bucket `i` holds `(2^((i-1)/8), 2^(i/8)]`
//! seconds, a growth factor of 1.09), the resolution Prometheus clients default to: a quantile
//! is off by at most 9 %, with one to two hundred buckets from a microsecond to ten seconds.
use crate::samples::LatencyStats;

/// log2 of the first classic upper bound, in ns.
const FIRST_BOUND_LOG2: u32 = 8;
/// log2 of the last finite classic upper bound, in ns.
const LAST_BOUND_LOG2: u32 = 34;
/// Classic buckets, `+Inf` included.
pub const CLASSIC_BUCKETS: usize = (LAST_BOUND_LOG2 - FIRST_BOUND_LOG2 + 2) as usize;
/// The native histograms' schema: 2^3 buckets per power of two.
pub const NATIVE_SCHEMA: i32 = 3;

/// The classic buckets' upper bounds in seconds (`+Inf` last).
pub fn classic_bounds_s() -> [f64; CLASSIC_BUCKETS] {
    let mut bounds = [f64::INFINITY; CLASSIC_BUCKETS];
    for (i, bound) in bounds.iter_mut().take(CLASSIC_BUCKETS - 1).enumerate() {
        *bound = (1u64 << (FIRST_BOUND_LOG2 + i as u32)) as f64 / 1e9;
    }
    bounds
}

/// The classic bucket that holds a latency of `ns` (values below 2^8 ns go to the first).
fn classic_index(ns: u64) -> usize {
    if ns < 1 << FIRST_BOUND_LOG2 {
        return 0;
    }
    // ns in [2^k, 2^(k+1)) is below the bound 2^(k+1): bucket k + 1 - FIRST.
    let k = 63 - ns.leading_zeros();
    ((k + 1 - FIRST_BOUND_LOG2) as usize).min(CLASSIC_BUCKETS - 1)
}

/// The native bucket that holds a latency of `ns`: the smallest `i` with
/// `ns / 1e9 <= 2^(i / 2^schema)`.
pub fn native_index(ns: u64) -> i32 {
    let seconds = ns.max(1) as f64 / 1e9;
    let index = (seconds.log2() * f64::from(1 << NATIVE_SCHEMA)).ceil();
    // Rounding can put a value exactly on a bound one bucket too high: check it.
    let i = index as i32;
    if seconds <= native_upper_s(i - 1) {
        i - 1
    } else {
        i
    }
}

/// The upper bound of native bucket `i`, in seconds.
pub fn native_upper_s(i: i32) -> f64 {
    (f64::from(i) / f64::from(1 << NATIVE_SCHEMA)).exp2()
}

/// Cumulative counts of one series (one cgroup and fault class, or stall kind).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Observations, and their sum in ns.
    pub count: u64,
    pub sum_ns: u64,
    /// Per classic bucket (not cumulative; the renderer accumulates).
    pub classic: [u64; CLASSIC_BUCKETS],
    /// Native buckets with counts, sorted by index.
    pub native: Vec<(i32, u64)>,
}

impl Histogram {
    /// Adds every latency of one interval's distribution.
    pub fn add(&mut self, stats: &LatencyStats) {
        self.count += stats.count();
        self.sum_ns = self.sum_ns.saturating_add(stats.total_ns());
        for (value, count) in stats.pairs() {
            self.classic[classic_index(value)] += count;
            let index = native_index(value);
            match self.native.binary_search_by_key(&index, |&(i, _)| i) {
                Ok(at) => self.native[at].1 += count,
                Err(at) => self.native.insert(at, (index, count)),
            }
        }
    }

    /// Classic buckets: (upper bound in seconds, observations in this bucket alone); the
    /// encoders accumulate them into Prometheus' cumulative `le` counts.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        classic_bounds_s().into_iter().zip(self.classic).collect()
    }

    /// The native buckets as Prometheus encodes them: spans of consecutive indices (offset
    /// from the previous span's end, length) and the counts as deltas from the previous one.
    pub fn native_spans(&self) -> (Vec<(i32, u32)>, Vec<i64>) {
        let mut spans: Vec<(i32, u32)> = Vec::new();
        let mut deltas = Vec::with_capacity(self.native.len());
        let mut next: Option<i32> = None;
        let mut previous = 0i64;
        for &(index, count) in &self.native {
            match next {
                Some(n) if n == index => {
                    if let Some(last) = spans.last_mut() {
                        last.1 += 1;
                    }
                }
                Some(n) => spans.push((index - n, 1)),
                None => spans.push((index, 1)),
            }
            next = Some(index + 1);
            deltas.push(count as i64 - previous);
            previous = count as i64;
        }
        (spans, deltas)
    }
}
