//! Latency distributions: HdrHistogram (ns, 3 significant digits) and the summaries and log2
//! buckets the renderers need. In a recording a distribution keeps its full precision: a small
//! one as its (value, count) pairs, a large one in HdrHistogram's V2 encoding.
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer, V2Serializer},
};
use serde::{Deserialize, Serialize};

/// Significant digits kept by every latency histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Distinct values a distribution keeps in a small sorted list before it switches to a full
/// HdrHistogram: a process that faulted a few hundred times costs a few kilobytes, not the 64 to
/// 200 KB of a histogram's counts (thousands of short-lived processes a second are common, and
/// a `/bin/true` alone makes ~70 faults of ~60 distinct latencies). Past the first few hundred
/// faults a new distinct value is rare, so inserting into the list stays cheap.
const SPARSE_LIMIT: usize = 256;

/// Pairs a compact distribution holds before it checks whether a histogram would be smaller.
const COMPACT_CHECK: usize = 2048;

/// The counts behind a distribution.
#[derive(Clone, Debug)]
enum Counts {
    /// (value at HdrHistogram's 3-digit resolution, count), sorted by value.
    Sparse(Vec<(u64, u64)>),
    /// A full histogram.
    Dense(Box<Histogram<u64>>),
}

/// Count, total and distribution of one kind of latency.
#[derive(Clone, Debug)]
pub struct LatencyStats {
    count: u64,
    total_ns: u64,
    counts: Counts,
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for LatencyStats {
    /// Same count, total and counts per value, whatever the representation.
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count
            && self.total_ns == other.total_ns
            && self.pairs() == other.pairs()
    }
}

/// An empty histogram that grows as needed.
fn empty_histogram() -> Histogram<u64> {
    // `new` with 3 digits only fails for more than 5 digits.
    let mut hist = Histogram::new(SIGNIFICANT_DIGITS).unwrap_or_else(|_| unreachable!());
    hist.auto(true);
    hist
}

/// The lowest value HdrHistogram with 3 significant digits holds `value` as: exact below 2048,
/// then 11 significant bits.
pub fn quantize(value: u64) -> u64 {
    if value < 2048 {
        return value;
    }
    let shift = 63 - value.leading_zeros() - 10;
    (value >> shift) << shift
}

impl LatencyStats {
    /// An empty distribution.
    pub fn new() -> Self {
        Self {
            count: 0,
            total_ns: 0,
            counts: Counts::Sparse(Vec::new()),
        }
    }

    /// Adds one latency.
    pub fn record(&mut self, latency_ns: u64) {
        self.count += 1;
        self.total_ns = self.total_ns.saturating_add(latency_ns);
        let value = latency_ns.max(1);
        if let Counts::Sparse(values) = &mut self.counts {
            let q = quantize(value);
            match values.binary_search_by_key(&q, |&(v, _)| v) {
                Ok(i) => values[i].1 += 1,
                Err(i) if values.len() < SPARSE_LIMIT => values.insert(i, (q, 1)),
                Err(_) => self.counts = Counts::Dense(Box::new(self.to_histogram())),
            }
            if let Counts::Sparse(_) = self.counts {
                return;
            }
        }
        if let Counts::Dense(hist) = &mut self.counts {
            // With auto-resize, recording can only fail beyond u64's range of buckets.
            let _ = hist.record(value);
        }
    }

    /// Adds every latency of `other`. Two small distributions stay small while their union
    /// fits; a large one absorbs the other in place.
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.total_ns = self.total_ns.saturating_add(other.total_ns);
        match (&mut self.counts, &other.counts) {
            (Counts::Sparse(mine), Counts::Sparse(theirs)) => {
                let union = merge_pairs(mine, theirs);
                if union.len() <= SPARSE_LIMIT {
                    *mine = union;
                } else {
                    self.counts = Counts::Dense(Box::new(histogram_of(&union)));
                }
            }
            (Counts::Dense(mine), Counts::Sparse(theirs)) => {
                for &(value, count) in theirs {
                    let _ = mine.record_n(value, count);
                }
            }
            (Counts::Dense(mine), Counts::Dense(theirs)) => {
                // Both auto-resize with the same precision, so adding cannot fail.
                let _ = mine.add(&**theirs);
            }
            (Counts::Sparse(mine), Counts::Dense(theirs)) => {
                let mut hist = (**theirs).clone();
                for &(value, count) in mine.iter() {
                    let _ = hist.record_n(value, count);
                }
                self.counts = Counts::Dense(Box::new(hist));
            }
        }
    }

    /// Adds every latency of `other`, keeping only the values recorded (sorted pairs) however
    /// many there are: for distributions that live long (a process's, over a whole recording),
    /// whose non-zero buckets are a few hundred to a few thousand of a full histogram's 16 000
    /// to 25 000 counters. Quantiles are computed from a histogram built when asked.
    /// A distribution so spread that its pairs outweigh a histogram's counters becomes one.
    pub fn merge_compact(&mut self, other: &Self) {
        let Counts::Sparse(values) = &self.counts else {
            return self.merge(other);
        };
        let union = merge_pairs(values, &other.pairs());
        self.count += other.count;
        self.total_ns = self.total_ns.saturating_add(other.total_ns);
        self.counts = Counts::Sparse(union);
        if let Counts::Sparse(pairs) = &self.counts
            && pairs.len() > COMPACT_CHECK
        {
            let hist = histogram_of(pairs);
            if hist.distinct_values() * size_of::<u64>() < pairs.len() * size_of::<(u64, u64)>() {
                self.counts = Counts::Dense(Box::new(hist));
            }
        }
    }

    /// (value, count) of every recorded value, lowest first, at 3-digit resolution.
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        match &self.counts {
            Counts::Sparse(values) => values.clone(),
            Counts::Dense(hist) => hist
                .iter_recorded()
                .map(|v| {
                    (
                        hist.lowest_equivalent(v.value_iterated_to()),
                        v.count_at_value(),
                    )
                })
                .collect(),
        }
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the latencies.
    pub fn total_ns(&self) -> u64 {
        self.total_ns
    }

    /// The distribution as an HdrHistogram (built on demand while it is small).
    pub fn to_histogram(&self) -> Histogram<u64> {
        match &self.counts {
            Counts::Dense(hist) => (**hist).clone(),
            Counts::Sparse(values) => histogram_of(values),
        }
    }

    /// Count, total, mean and percentiles.
    pub fn summary(&self) -> LatencySummary {
        let hist = self.to_histogram();
        let q = |quantile: f64| {
            if self.count == 0 {
                0
            } else {
                hist.value_at_quantile(quantile)
            }
        };
        LatencySummary {
            count: self.count,
            total_ns: self.total_ns,
            mean_ns: self.total_ns.checked_div(self.count).unwrap_or(0),
            min_ns: if self.count == 0 { 0 } else { hist.min() },
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            max_ns: if self.count == 0 { 0 } else { hist.max() },
        }
    }

    /// Power-of-two buckets `[lo, hi]` with their counts, from the lowest to the highest
    /// non-empty one (empty ones in between included), as BCC's histograms show them.
    pub fn log2_buckets(&self) -> Vec<Log2Bucket> {
        let hist = self.to_histogram();
        let mut counts = [0u64; 65];
        for value in hist.iter_recorded() {
            let v = hist.lowest_equivalent(value.value_iterated_to()).max(1);
            counts[(63 - v.leading_zeros()) as usize] += value.count_at_value();
        }
        let Some(first) = counts.iter().position(|&c| c > 0) else {
            return Vec::new();
        };
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(first);
        (first..=last)
            .map(|i| Log2Bucket {
                lo_ns: 1u64 << i,
                hi_ns: (1u64 << i).saturating_mul(2) - 1,
                count: counts[i],
            })
            .collect()
    }
}

/// A histogram holding `pairs`.
fn histogram_of(pairs: &[(u64, u64)]) -> Histogram<u64> {
    let mut hist = empty_histogram();
    for &(value, count) in pairs {
        let _ = hist.record_n(value, count);
    }
    hist
}

/// The union of two sorted (value, count) lists, counts of equal values added.
fn merge_pairs(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// How a distribution is written in a recording: small ones as pairs, large ones as an
/// HdrHistogram V2 blob (the whole frame is compressed, so the blob is not deflated twice).
#[derive(Serialize, Deserialize)]
struct Wire {
    count: u64,
    total_ns: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    values: Vec<(u64, u64)>,
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Vec::is_empty")]
    hdr_v2: Vec<u8>,
}

impl Serialize for LatencyStats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut wire = Wire {
            count: self.count,
            total_ns: self.total_ns,
            values: Vec::new(),
            hdr_v2: Vec::new(),
        };
        match &self.counts {
            Counts::Sparse(values) => wire.values = values.clone(),
            Counts::Dense(hist) => {
                V2Serializer::new()
                    .serialize(&**hist, &mut wire.hdr_v2)
                    .map_err(|e| serde::ser::Error::custom(format!("{e:?}")))?;
            }
        }
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LatencyStats {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let wire = Wire::deserialize(deserializer)?;
        let counts = if wire.hdr_v2.is_empty() {
            let sorted = wire.values.windows(2).all(|w| w[0].0 < w[1].0);
            if !sorted {
                return Err(D::Error::custom("distribution values out of order"));
            }
            let recorded: u64 = wire.values.iter().map(|v| v.1).sum();
            if recorded != wire.count {
                return Err(D::Error::custom("distribution counts disagree"));
            }
            Counts::Sparse(wire.values)
        } else {
            let mut hist: Histogram<u64> = Deserializer::new()
                .deserialize(&mut wire.hdr_v2.as_slice())
                .map_err(|e| D::Error::custom(format!("HdrHistogram V2: {e:?}")))?;
            if hist.len() != wire.count {
                return Err(D::Error::custom("distribution counts disagree"));
            }
            hist.auto(true);
            Counts::Dense(Box::new(hist))
        };
        Ok(Self {
            count: wire.count,
            total_ns: wire.total_ns,
            counts,
        })
    }
}

/// The numbers a report shows for one distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub total_ns: u64,
    pub mean_ns: u64,
    pub min_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// One power-of-two bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log2Bucket {
    pub lo_ns: u64,
    pub hi_ns: u64,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_known_distribution() {
        let mut stats = LatencyStats::new();
        for v in 1..=1000u64 {
            stats.record(v * 1000);
        }
        let s = stats.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.total_ns, 500_500_000);
        assert_eq!(s.mean_ns, 500_500);
        // 3 significant digits: within 0.1 % of the exact percentile.
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.001;
        assert!(near(s.p50_ns, 500_000), "p50 {}", s.p50_ns);
        assert!(near(s.p90_ns, 900_000), "p90 {}", s.p90_ns);
        assert!(near(s.p99_ns, 990_000), "p99 {}", s.p99_ns);
        assert!(near(s.p999_ns, 999_000), "p999 {}", s.p999_ns);
        assert!(near(s.max_ns, 1_000_000) && near(s.min_ns, 1000));
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(LatencyStats::new().summary(), LatencySummary::default());
        assert!(LatencyStats::new().log2_buckets().is_empty());
    }

    #[test]
    fn log2_buckets_cover_the_range_with_gaps() {
        let mut stats = LatencyStats::new();
        for v in [3u64, 3, 5, 100] {
            stats.record(v);
        }
        let buckets = stats.log2_buckets();
        assert_eq!(
            buckets.first().map(|b| (b.lo_ns, b.hi_ns, b.count)),
            Some((2, 3, 2))
        );
        assert_eq!(buckets[1].count, 1); // 4..7
        assert_eq!(buckets.last().map(|b| (b.lo_ns, b.count)), Some((64, 1)));
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 4);
        assert_eq!(buckets.len(), 6); // 2,4,8,16,32,64
    }

    #[test]
    fn sparse_and_dense_agree_on_every_figure() {
        let values: Vec<u64> = (0..500u64).map(|i| (i * 7919) % 300_000 + 100).collect();
        let mut stats = LatencyStats::new();
        let mut reference = empty_histogram();
        for (n, &v) in values.iter().enumerate() {
            stats.record(v);
            let _ = reference.record(v);
            if n == 40 {
                assert!(
                    matches!(stats.counts, Counts::Sparse(_)),
                    "small distributions stay sparse"
                );
            }
        }
        assert!(
            matches!(stats.counts, Counts::Dense(_)),
            "large ones become full histograms"
        );
        let s = stats.summary();
        assert_eq!(s.p50_ns, reference.value_at_quantile(0.5));
        assert_eq!(s.p999_ns, reference.value_at_quantile(0.999));
        assert_eq!((s.min_ns, s.max_ns), (reference.min(), reference.max()));
        assert_eq!(stats.to_histogram().len(), 500);
    }

    #[test]
    fn quantize_matches_hdrhistogram_equivalence() {
        let hist = empty_histogram();
        for v in [1u64, 2047, 2048, 2049, 4095, 123_456, 9_876_543_210] {
            assert_eq!(quantize(v), hist.lowest_equivalent(v), "{v}");
        }
    }

    fn cbor_round_trip(stats: &LatencyStats) -> LatencyStats {
        let mut bytes = Vec::new();
        ciborium::into_writer(stats, &mut bytes).expect("encode");
        ciborium::from_reader(bytes.as_slice()).expect("decode")
    }

    #[test]
    fn sparse_and_dense_distributions_survive_a_recording() {
        let mut small = LatencyStats::new();
        let mut large = LatencyStats::new();
        for i in 0..5000u64 {
            if i < 30 {
                small.record(i * 37 + 5);
            }
            large.record((i * 7919) % 9_000_000 + 100);
        }
        assert!(matches!(small.counts, Counts::Sparse(_)));
        assert!(matches!(large.counts, Counts::Dense(_)));
        for stats in [&small, &large, &LatencyStats::new()] {
            let back = cbor_round_trip(stats);
            assert_eq!(&back, stats);
            assert_eq!(back.summary(), stats.summary());
            assert_eq!(back.log2_buckets(), stats.log2_buckets());
        }
    }

    #[test]
    fn merging_keeps_every_value_and_small_ones_stay_small() {
        let (mut a, mut b, mut all) = (
            LatencyStats::new(),
            LatencyStats::new(),
            LatencyStats::new(),
        );
        for v in [5u64, 9, 9, 4000] {
            a.record(v);
            all.record(v);
        }
        for v in [9u64, 12, 1_000_000] {
            b.record(v);
            all.record(v);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert!(matches!(merged.counts, Counts::Sparse(_)));
        assert_eq!(merged, all);
        let mut big = LatencyStats::new();
        for v in 0..1000u64 {
            big.record(v * 1000 + 1);
            all.record(v * 1000 + 1);
        }
        merged.merge(&big);
        assert_eq!(merged, all);
        let mut other_way = big.clone();
        other_way.merge(&a);
        other_way.merge(&b);
        assert_eq!(other_way, all);
        assert_eq!(other_way.summary(), all.summary());
    }

    /// Twenty intervals of faults like a real process's: most near a microsecond, a tail to
    /// milliseconds.
    fn intervals_of(spread: u64) -> (LatencyStats, LatencyStats) {
        let mut all = LatencyStats::new();
        let mut compact = LatencyStats::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20 {
            let mut part = LatencyStats::new();
            for _ in 0..2000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Nine in ten within two octaves of 600 ns, the rest a log-uniform tail.
                let v = if !state.is_multiple_of(10) {
                    600 + (state >> 20) % 1800
                } else {
                    let base = 600u64 << ((state >> 8) % spread);
                    base + (state >> 24) % base
                };
                part.record(v);
                all.record(v);
            }
            compact.merge_compact(&part);
        }
        (all, compact)
    }

    #[test]
    fn compact_merges_keep_every_value_in_a_fraction_of_the_memory() {
        let (all, compact) = intervals_of(14);
        assert!(matches!(all.counts, Counts::Dense(_)));
        assert_eq!(compact, all);
        assert_eq!(compact.summary(), all.summary());
        let Counts::Sparse(pairs) = &compact.counts else {
            panic!("a concentrated distribution stays pairs");
        };
        let dense_bytes = all.to_histogram().distinct_values() * 8;
        assert!(
            pairs.len() * 16 < dense_bytes,
            "{} pairs vs {dense_bytes} bytes of counters",
            pairs.len()
        );
    }

    #[test]
    fn a_spread_out_distribution_becomes_a_histogram_when_that_is_smaller() {
        let mut all = LatencyStats::new();
        let mut compact = LatencyStats::new();
        for interval in 0..20u64 {
            let mut part = LatencyStats::new();
            for i in 0..2000u64 {
                let v = 500 + (i * 7919 + interval * 31) % 200_000;
                part.record(v);
                all.record(v);
            }
            compact.merge_compact(&part);
        }
        assert!(matches!(compact.counts, Counts::Dense(_)));
        assert_eq!(compact, all);
    }

    #[test]
    fn a_recorded_distribution_that_lies_about_its_count_is_refused() {
        let mut stats = LatencyStats::new();
        stats.record(10);
        let mut bytes = Vec::new();
        ciborium::into_writer(&stats, &mut bytes).expect("encode");
        let mut wire: ciborium::Value = ciborium::from_reader(bytes.as_slice()).expect("value");
        if let ciborium::Value::Map(fields) = &mut wire {
            fields[0].1 = ciborium::Value::Integer(2.into());
        }
        let mut lied = Vec::new();
        ciborium::into_writer(&wire, &mut lied).expect("encode");
        assert!(ciborium::from_reader::<LatencyStats, _>(lied.as_slice()).is_err());
    }

    #[test]
    fn huge_latencies_are_kept() {
        let mut stats = LatencyStats::new();
        stats.record(u64::MAX / 4);
        stats.record(0);
        assert_eq!(stats.count(), 2);
        assert!(stats.summary().max_ns > 1 << 60);
    }
}
