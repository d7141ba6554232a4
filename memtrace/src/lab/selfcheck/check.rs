//! One row of the selfcheck: a figure of memtrace's beside the kernel's own measure of the
//! same thing, the tolerance between them, and the verdict. Pure data and arithmetic.
use serde::{Deserialize, Serialize};

/// A figure, with its unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum Value {
    /// Events or pages.
    Count(u64),
    /// A total time in nanoseconds.
    Ns(u64),
    /// A size in KiB.
    Kb(u64),
    /// A process id.
    Pid(u32),
    /// A name (a process's comm).
    Text(String),
}

impl Value {
    /// The number, for the tolerances that compare magnitudes; `None` for text.
    fn number(&self) -> Option<u64> {
        match self {
            Self::Count(n) | Self::Ns(n) | Self::Kb(n) => Some(*n),
            Self::Pid(pid) => Some(u64::from(*pid)),
            Self::Text(_) => None,
        }
    }
}

/// How far memtrace's figure may be from the kernel's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// Equal.
    Exact,
    /// Within this many percent of the kernel's figure, either way.
    Percent(f64),
    /// At least the kernel's figure: memtrace times a span that contains the kernel's (a
    /// swap-in fault contains its read), so it may only be longer.
    AtLeast,
    /// memtrace's spans wrap the kernel's tightly (tracepoints just outside the kernel's own
    /// accounting): at least the kernel's total, and at most `per_event_ns` more for each of
    /// the `events`, the cost of memtrace's own programs at both ends.
    Wraps { per_event_ns: u64, events: u64 },
    /// At most the kernel's figure (plus 2 % and 1 ms for the two sides' different reading
    /// points): memtrace measures a part of what the kernel's figure holds (the faults' wait
    /// for a CPU is within the process's run delay).
    AtMost,
    /// The same time read at different points, where the kernel's figure may also hold time
    /// that is not memtrace's: at most 2 % and 1 ms above it, at most 2 % and 5 ms below. The
    /// faults' blocked time against the thread's time asleep (wall clock minus schedstat's CPU
    /// time and run delay), which in a VM also holds time the hypervisor took from the vCPU
    /// while the thread ran: 2–4.5 ms over a 0.4 s read here, with the sched_switch
    /// tracepoints (bpftrace) and memtrace agreeing within 0.9 ms (memtrace's earlier design,
    /// which measured at the switches; the current one agrees with it within 0.1 ms).
    Near,
}

impl Tolerance {
    /// Whether `memtrace` is close enough to `kernel`.
    fn admits(self, memtrace: &Value, kernel: &Value) -> bool {
        let (Some(m), Some(k)) = (memtrace.number(), kernel.number()) else {
            return self == Self::Exact && memtrace == kernel;
        };
        match self {
            Self::Exact => m == k,
            Self::Percent(percent) => m.abs_diff(k) as f64 <= k as f64 * percent / 100.0,
            Self::AtLeast => m >= k,
            Self::AtMost => m <= k + k / 50 + 1_000_000,
            Self::Near => m <= k + k / 50 + 1_000_000 && m + k / 50 + 5_000_000 >= k,
            Self::Wraps {
                per_event_ns,
                events,
            } => m >= k && m - k <= per_event_ns.saturating_mul(events),
        }
    }
}

/// The outcome of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// One comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The scenario it comes from (`faults`, `swap storm`, ...).
    pub scenario: String,
    /// What is compared, in words.
    pub figure: String,
    /// memtrace's figure; `None` when memtrace reported nothing to compare.
    pub memtrace: Option<Value>,
    /// The kernel's figure; `None` when it could not be read (see `note`).
    pub kernel: Option<Value>,
    /// Where the kernel's figure comes from.
    pub source: String,
    pub tolerance: Tolerance,
    pub verdict: Verdict,
    /// Why the row failed without a comparison, or what qualifies it.
    pub note: Option<String>,
}

/// A row before its verdict: what a scenario's row builder fills in.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: &'static str,
    pub memtrace: Option<Value>,
    pub kernel: Result<Value, String>,
    pub source: String,
    pub tolerance: Tolerance,
    /// The scenario must make at least this much of the kernel's figure for the comparison
    /// to mean anything (0 against 0 proves nothing).
    pub floor: u64,
}

impl Row {
    /// A row with no floor.
    pub fn new(
        figure: &'static str,
        memtrace: Option<Value>,
        kernel: Result<Value, String>,
        source: impl Into<String>,
        tolerance: Tolerance,
    ) -> Self {
        Self {
            figure,
            memtrace,
            kernel,
            source: source.into(),
            tolerance,
            floor: 0,
        }
    }

    /// Requires the kernel's figure to reach `floor`.
    pub fn floor(self, floor: u64) -> Self {
        Self { floor, ..self }
    }

    /// Judges the row.
    pub fn judge(self, scenario: &str) -> Check {
        let note = match (&self.memtrace, &self.kernel) {
            (_, Err(why)) => Some(why.clone()),
            (None, Ok(_)) => Some("memtrace reported nothing".to_string()),
            (Some(_), Ok(k)) if k.number().is_some_and(|n| n < self.floor) => Some(format!(
                "the scenario made fewer than {} on this machine: nothing to compare",
                self.floor
            )),
            (Some(m), Ok(k)) if self.tolerance.admits(m, k) => None,
            (Some(_), Ok(_)) => Some(self.off_by()),
        };
        let passed = note.is_none();
        Check {
            scenario: scenario.to_string(),
            figure: self.figure.to_string(),
            memtrace: self.memtrace,
            kernel: self.kernel.ok(),
            source: self.source,
            tolerance: self.tolerance,
            verdict: if passed { Verdict::Pass } else { Verdict::Fail },
            note,
        }
    }

    /// How far apart the two numbers are, for a failed row.
    fn off_by(&self) -> String {
        let numbers = self
            .memtrace
            .as_ref()
            .and_then(Value::number)
            .zip(self.kernel.as_ref().ok().and_then(Value::number));
        match numbers {
            Some((m, k)) if k > 0 => {
                format!("off by {:+.2} %", (m as f64 - k as f64) * 100.0 / k as f64)
            }
            _ => "differs".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(memtrace: Value, kernel: Value, tolerance: Tolerance) -> Check {
        Row::new("x", Some(memtrace), Ok(kernel), "test", tolerance).judge("s")
    }

    #[test]
    fn exact_rows_pass_only_when_equal() {
        let pass = judge(Value::Count(100), Value::Count(100), Tolerance::Exact);
        assert_eq!((pass.verdict, pass.note), (Verdict::Pass, None));
        let fail = judge(Value::Count(101), Value::Count(100), Tolerance::Exact);
        assert_eq!(fail.verdict, Verdict::Fail);
        assert_eq!(fail.note.as_deref(), Some("off by +1.00 %"));
        let names = judge(
            Value::Text("a".into()),
            Value::Text("a".into()),
            Tolerance::Exact,
        );
        assert_eq!(names.verdict, Verdict::Pass);
        let other = judge(
            Value::Text("a".into()),
            Value::Text("b".into()),
            Tolerance::Exact,
        );
        assert_eq!(other.verdict, Verdict::Fail);
        assert_eq!(other.note.as_deref(), Some("differs"));
    }

    #[test]
    fn percent_rows_allow_either_side() {
        let t = Tolerance::Percent(2.0);
        assert_eq!(
            judge(Value::Ns(98), Value::Ns(100), t).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(Value::Ns(102), Value::Ns(100), t).verdict,
            Verdict::Pass
        );
        let low = judge(Value::Ns(97), Value::Ns(100), t);
        assert_eq!(low.verdict, Verdict::Fail);
        assert_eq!(low.note.as_deref(), Some("off by -3.00 %"));
        assert_eq!(judge(Value::Ns(0), Value::Ns(0), t).verdict, Verdict::Pass);
    }

    #[test]
    fn near_rows_allow_a_little_above_and_more_below() {
        let t = Tolerance::Near;
        let verdict = |m: u64, k: u64| judge(Value::Ns(m), Value::Ns(k), t).verdict;
        assert_eq!(verdict(103_000_000, 100_000_000), Verdict::Pass);
        assert_eq!(verdict(103_000_001, 100_000_000), Verdict::Fail);
        assert_eq!(verdict(93_000_000, 100_000_000), Verdict::Pass);
        assert_eq!(verdict(92_999_999, 100_000_000), Verdict::Fail);
        assert_eq!(verdict(1_000_000, 0), Verdict::Pass);
        assert_eq!(verdict(1_000_001, 0), Verdict::Fail);
        assert_eq!(verdict(0, 5_000_000), Verdict::Pass);
    }

    #[test]
    fn at_least_rows_fail_below_the_kernel() {
        let t = Tolerance::AtLeast;
        assert_eq!(
            judge(Value::Ns(500), Value::Ns(100), t).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(Value::Ns(100), Value::Ns(100), t).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(Value::Ns(99), Value::Ns(100), t).verdict,
            Verdict::Fail
        );
        let text = judge(Value::Text("a".into()), Value::Text("a".into()), t);
        assert_eq!(text.verdict, Verdict::Fail, "text has no magnitude");
    }

    #[test]
    fn wrapping_rows_allow_a_cost_per_event_above_the_kernel_only() {
        let t = Tolerance::Wraps {
            per_event_ns: 10_000,
            events: 100,
        };
        let ms = |ms: u64| Value::Ns(ms * 1_000_000);
        assert_eq!(judge(ms(50), ms(50), t).verdict, Verdict::Pass);
        assert_eq!(judge(ms(51), ms(50), t).verdict, Verdict::Pass);
        let over = judge(Value::Ns(51_000_001), ms(50), t);
        assert_eq!(over.verdict, Verdict::Fail);
        assert_eq!(over.note.as_deref(), Some("off by +2.00 %"));
        assert_eq!(
            judge(Value::Ns(49_999_999), ms(50), t).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn a_scenario_below_its_floor_fails_with_the_reason() {
        let row = Row::new(
            "swap-outs",
            Some(Value::Count(0)),
            Ok(Value::Count(0)),
            "/proc/vmstat pswpout",
            Tolerance::Exact,
        )
        .floor(10_000);
        let check = row.judge("swap storm");
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(
            check
                .note
                .as_deref()
                .is_some_and(|n| n.contains("fewer than 10000")),
            "{check:?}"
        );
    }

    #[test]
    fn an_unreadable_kernel_figure_or_a_missing_one_fails_and_says_why() {
        let unreadable = Row::new(
            "victim pid",
            Some(Value::Pid(7)),
            Err("/dev/kmsg: permission denied".into()),
            "dmesg",
            Tolerance::Exact,
        )
        .judge("memcg OOM");
        assert_eq!(unreadable.verdict, Verdict::Fail);
        assert_eq!(unreadable.kernel, None);
        assert_eq!(
            unreadable.note.as_deref(),
            Some("/dev/kmsg: permission denied")
        );
        let missing = Row::new(
            "victim pid",
            None,
            Ok(Value::Pid(7)),
            "dmesg",
            Tolerance::Exact,
        )
        .judge("memcg OOM");
        assert_eq!(missing.verdict, Verdict::Fail);
        assert_eq!(missing.note.as_deref(), Some("memtrace reported nothing"));
    }

    #[test]
    fn values_serialize_with_their_unit() {
        let json = serde_json::to_string(&Value::Ns(5)).expect("json");
        assert_eq!(json, r#"{"unit":"ns","value":5}"#);
        let json = serde_json::to_string(&Tolerance::Percent(2.0)).expect("json");
        assert_eq!(json, r#"{"percent":2.0}"#);
        let json = serde_json::to_string(&Tolerance::Exact).expect("json");
        assert_eq!(json, r#""exact""#);
        let wraps = Tolerance::Wraps {
            per_event_ns: 10_000,
            events: 3,
        };
        let json = serde_json::to_string(&wraps).expect("json");
        assert_eq!(json, r#"{"wraps":{"per_event_ns":10000,"events":3}}"#);
    }
}
