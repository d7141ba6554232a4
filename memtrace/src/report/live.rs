//! The line printed every interval while recording, so the user sees it working.
use std::io::{self, Write};

use memtrace_common::{FAULT_CLASSES, FaultClass};

use super::{timeline, units};
use crate::{
    model::Tick,
    samples::{IntervalSample, machine::Thresholds},
};

/// Counts of one interval.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IntervalCounts {
    /// Faults per class.
    pub faults: [u64; FAULT_CLASSES],
    /// Faults per process, busiest first (ties by pid).
    pub per_pid: Vec<(u32, u64)>,
    /// Reclaim and compaction stalls, and the time in them.
    pub stalls: u64,
    pub stall_ns: u64,
}

impl IntervalCounts {
    /// The counts of a sample.
    pub fn of(sample: &IntervalSample) -> Self {
        let mut counts = Self::default();
        for process in &sample.processes {
            let mut total = 0;
            for class in &process.faults {
                let n = class.latency.count();
                total += n;
                if let Some(slot) = counts.faults.get_mut(class.class as usize) {
                    *slot += n;
                }
            }
            for stall in &process.stalls {
                counts.stalls += stall.latency.count();
                counts.stall_ns += stall.latency.total_ns();
            }
            if total > 0 {
                counts.per_pid.push((process.pid, total));
            }
        }
        counts
            .per_pid
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts
    }

    /// All faults of the interval.
    pub fn total(&self) -> u64 {
        self.faults.iter().sum()
    }
}

/// `00:01:05`, or `00:01:05.250` when intervals are shorter than a second.
fn stamp(elapsed: std::time::Duration, interval: std::time::Duration) -> String {
    let secs = elapsed.as_secs();
    let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if interval.as_millis() < 1000 {
        format!("{hms}.{:03}", elapsed.subsec_millis())
    } else {
        hms
    }
}

/// How many of the busiest processes the line names.
const TOP: usize = 3;

/// Writes one line: elapsed time, fault rate by class, stalls, swap and PSI, lost records,
/// busiest processes, and `!!` with the most stalled process when the interval hurts.
pub fn write(
    tick: &Tick<'_>,
    thresholds: &Thresholds,
    focus: &[u32],
    out: &mut impl Write,
) -> io::Result<()> {
    let secs = tick.interval.as_secs_f64();
    let counts = IntervalCounts::of(tick.sample);
    write!(
        out,
        "{} faults/s {:>6} (minor {}, thp {}, file {}, swap-in {}) faults lost {}",
        stamp(tick.elapsed, tick.interval),
        units::rate(counts.total(), secs),
        units::rate(counts.faults[FaultClass::Minor as usize], secs),
        units::rate(counts.faults[FaultClass::Thp as usize], secs),
        units::rate(counts.faults[FaultClass::MajorFile as usize], secs),
        units::rate(counts.faults[FaultClass::MajorSwap as usize], secs),
        tick.lost_faults,
    )?;
    if counts.stalls > 0 {
        write!(
            out,
            " stalls {} ({})",
            counts.stalls,
            units::duration_ns(counts.stall_ns)
        )?;
    }
    let m = tick.model.machine.last().copied().unwrap_or_default();
    if m.pswpin_per_s + m.pswpout_per_s > 0.0 {
        write!(
            out,
            " swap in/out {}/{} per s",
            units::count(m.pswpin_per_s as u64),
            units::count(m.pswpout_per_s as u64)
        )?;
    }
    // Shown when it rounds to at least 1 %.
    if let Some(psi) = m.psi_some_pct.filter(|p| p.round() >= 1.0) {
        write!(out, " PSI {}%", psi.round() as u64)?;
    }
    let oom_kills = tick.model.oom.kills.len();
    if oom_kills > 0 {
        write!(out, " oom-kills {oom_kills}")?;
    }
    if tick.sample.malformed > 0 {
        write!(out, " malformed {}", tick.sample.malformed)?;
    }
    if !counts.per_pid.is_empty() {
        write!(out, " |")?;
        for &(pid, n) in counts.per_pid.iter().take(TOP) {
            write!(
                out,
                " {}[{pid}] {}",
                units::printable(tick.model.comm_of(pid)),
                units::rate(n, secs)
            )?;
        }
    }
    if let Some(row) = timeline::last_row(tick.model, thresholds, focus).filter(|r| r.flagged) {
        write!(out, " !!")?;
        if let Some(p) = row.processes.first() {
            let kinds: Vec<String> = p
                .by_kind
                .iter()
                .map(|(k, v)| format!("{} {}", k.short(), units::share(*v)))
                .collect();
            write!(
                out,
                " {}[{}] stalled {} ({})",
                units::printable(&p.comm),
                p.pid,
                units::share(p.stalled_pct),
                kinds.join(" ")
            )?;
        }
    }
    super::growth::write_live(tick.model, out)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        report::fixture::{self, MS, render},
        samples::{ClassSample, ProcessSample},
    };

    fn line(tick: &Tick<'_>, focus: &[u32]) -> String {
        render(|out| write(tick, &Thresholds::default(), focus, out))
    }

    #[test]
    fn a_hurting_interval_is_flagged_with_its_most_stalled_process() {
        let model = fixture::model();
        let second = fixture::second_interval();
        let text = line(&fixture::tick(&model, &second, 3), &[]);
        assert_eq!(
            text,
            "00:00:02 faults/s      4 (minor 1, thp 0, file 2, swap-in 1) faults lost 3 \
             stalls 4 (230ms) swap in/out 50/1.50k per s PSI 30% oom-kills 1 \
             | postgres[100] 3 cron[300] 1 \
             !! postgres[100] stalled 23% (direct 3% memcg 20%)\n"
        );
    }

    #[test]
    fn a_quiet_interval_has_no_flag_swap_psi_or_oom() {
        let first = fixture::first_interval();
        let model = fixture::model_of(std::slice::from_ref(&first), None);
        let text = line(&fixture::tick(&model, &first, 0), &[]);
        assert_eq!(
            text,
            "00:00:01 faults/s      7 (minor 7, thp 0, file 0, swap-in 0) faults lost 0 \
             stalls 1 (2.00ms) | postgres[100] 4 redis[200] 3\n"
        );
    }

    #[test]
    fn short_intervals_stamp_milliseconds_and_scale_the_rates() {
        let first = fixture::first_interval();
        let model = fixture::model_of(std::slice::from_ref(&first), None);
        let mut tick = fixture::tick(&model, &first, 2);
        tick.elapsed = Duration::from_millis(1_250);
        tick.interval = Duration::from_millis(250);
        let text = line(&tick, &[]);
        // 7 faults in a quarter of a second.
        assert!(
            text.starts_with(
                "00:00:01.250 faults/s     28 (minor 28, thp 0, file 0, swap-in 0) faults lost 2 "
            ),
            "{text}"
        );
        assert!(
            text.ends_with("| postgres[100] 16 redis[200] 12\n"),
            "{text}"
        );
        tick.elapsed = Duration::from_millis(3_661_250);
        tick.interval = Duration::from_secs(1);
        let text = line(&tick, &[]);
        assert!(text.starts_with("01:01:01 faults/s      7 "), "{text}");
        tick.interval = Duration::from_millis(999);
        assert!(line(&tick, &[]).starts_with("01:01:01.250 "));
    }

    #[test]
    fn a_focus_without_stalls_keeps_the_psi_flag_but_names_nobody() {
        let model = fixture::model();
        let second = fixture::second_interval();
        let text = line(&fixture::tick(&model, &second, 0), &[200]);
        assert!(text.ends_with("cron[300] 1 !!\n"), "{text}");
        assert!(!text.contains("stalled"), "{text}");
    }

    #[test]
    fn below_the_thresholds_no_flag() {
        let model = fixture::model();
        let second = fixture::second_interval();
        let thresholds = Thresholds {
            stall_pct: 50.0,
            psi_pct: 50.0,
        };
        let text = render(|out| write(&fixture::tick(&model, &second, 0), &thresholds, &[], out));
        assert!(!text.contains("!!"), "{text}");
        assert!(text.contains(" PSI 30% "), "{text}");
    }

    #[test]
    fn malformed_records_are_counted() {
        let mut second = fixture::second_interval();
        second.malformed = 2;
        let model = fixture::model_of(&[fixture::first_interval(), second.clone()], None);
        let text = line(&fixture::tick(&model, &second, 0), &[]);
        assert!(text.contains(" oom-kills 1 malformed 2 |"), "{text}");
    }

    #[test]
    fn counts_of_an_interval() {
        let counts = IntervalCounts::of(&fixture::second_interval());
        assert_eq!(
            counts,
            IntervalCounts {
                faults: [1, 2, 1, 0],
                per_pid: vec![(100, 3), (300, 1)],
                stalls: 4,
                stall_ns: 230 * MS,
            }
        );
        assert_eq!(counts.total(), 4);
    }

    #[test]
    fn counts_tie_by_pid_and_leave_out_processes_without_faults() {
        let process = |pid, n: usize| ProcessSample {
            pid,
            faults: vec![ClassSample {
                class: FaultClass::Minor as u32,
                latency: fixture::stats(&vec![1_000; n]),
                ..ClassSample::default()
            }],
            ..ProcessSample::default()
        };
        let mut stalled = fixture::first_interval().processes[1].clone();
        stalled.faults.clear();
        let sample = IntervalSample {
            processes: vec![process(7, 2), stalled, process(5, 2), process(9, 3)],
            ..IntervalSample::default()
        };
        let counts = IntervalCounts::of(&sample);
        assert_eq!(counts.per_pid, [(9, 3), (5, 2), (7, 2)]);
        assert_eq!(
            (counts.total(), counts.stalls, counts.stall_ns),
            (7, 1, 2 * MS)
        );
    }
}
