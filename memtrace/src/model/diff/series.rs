//! The per-interval series of one run, which `memtrace diff` measures noise with: for every
//! process key and row, the moments of its per-interval rate and share and its per-interval
//! percentiles; for swap traffic, in total and per memory cgroup, the moments of its rate.
//! A pure fold of interval samples, beside the model's.
use std::collections::HashMap;

use memtrace_common::{FaultClass, StallKind};
use serde::{Deserialize, Serialize};

use super::noise::{Moments, Weights};
use crate::samples::{IntervalSample, LatencyStats, ProcessSample};

/// How the processes of two runs are matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchBy {
    /// By command name: pids differ from one run to the next.
    Comm,
    /// By pid: the same long-running processes traced twice.
    Pid,
}

/// The key a process is matched by.
pub fn process_key(match_by: MatchBy, pid: u32, comm: &str) -> String {
    match match_by {
        MatchBy::Comm => comm.to_string(),
        MatchBy::Pid => pid.to_string(),
    }
}

/// The key of a memory cgroup: its path, or its inode when the recording has no path.
pub fn memcg_key(id: u64, path: Option<&str>) -> String {
    match path {
        Some(path) => path.to_string(),
        None if id == 0 => "(unknown memcg)".to_string(),
        None => format!("(memcg inode {id})"),
    }
}

/// What a process row counts: a fault class or a stall kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Row {
    Fault(FaultClass),
    Stall(StallKind),
}

impl Row {
    /// Every row, in display order: the fault classes, then the stall kinds.
    pub fn all() -> impl Iterator<Item = Self> {
        let faults = FaultClass::ALL.into_iter().map(Self::Fault);
        faults.chain(StallKind::ALL.into_iter().map(Self::Stall))
    }

    /// Its stable name (`swap_in`, `memcg_reclaim`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Fault(class) => class.name(),
            Self::Stall(kind) => kind.name(),
        }
    }
}

/// Which way swapped pages went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub const ALL: [Self; 2] = [Self::In, Self::Out];

    /// `in` or `out`.
    pub fn name(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

/// The per-interval figures of one process row.
#[derive(Clone, Debug, Default)]
pub struct RowSeries {
    /// Events per second, and time in them over the interval's length.
    pub rate: Moments,
    pub share: Moments,
    /// p50, p99, p99.9 and max (ns) of each interval that had events.
    pub quantiles: [Vec<f64>; 4],
}

/// The per-interval series of one run.
#[derive(Clone, Debug)]
pub struct Series {
    match_by: MatchBy,
    /// Every interval folded, as weights.
    pub weights: Weights,
    /// Names of live processes (the model's rule: a name from the main thread or an exec
    /// overrides), forgotten when they exit so that churn cannot grow the map.
    names: HashMap<(u32, u64), String>,
    memcg_paths: HashMap<u64, String>,
    /// By (process key, row).
    pub processes: HashMap<(String, Row), RowSeries>,
    /// Pages per second, machine-wide and by memory cgroup key.
    pub swap: HashMap<Direction, Moments>,
    pub memcgs: HashMap<(String, Direction), Moments>,
}

impl Series {
    /// An empty series whose processes are keyed by `match_by`.
    pub fn new(match_by: MatchBy) -> Self {
        Self {
            match_by,
            weights: Weights::default(),
            names: HashMap::new(),
            memcg_paths: HashMap::new(),
            processes: HashMap::new(),
            swap: HashMap::new(),
            memcgs: HashMap::new(),
        }
    }

    /// Adds one interval.
    pub fn apply(&mut self, sample: &IntervalSample) {
        for name in &sample.cgroups {
            if let Some(path) = &name.path {
                self.memcg_paths
                    .entry(name.id)
                    .or_insert_with(|| path.clone());
            }
        }
        let len_s = sample.end_ns.saturating_sub(sample.start_ns) as f64 / 1e9;
        // An interval of no length has no rate; its events still count in the model.
        if len_s > 0.0 {
            self.weights.add(len_s);
            self.add_processes(sample, len_s);
            self.add_swap(sample, len_s);
        }
        for process in sample.processes.iter().filter(|p| p.exit_ns.is_some()) {
            self.names.remove(&(process.pid, process.start_ns));
        }
        for exit in &sample.exits {
            self.names.remove(&(exit.pid, exit.start_ns));
        }
    }

    fn add_processes(&mut self, sample: &IntervalSample, len_s: f64) {
        // Processes that share a key are one row: their distributions merge.
        let mut rows: HashMap<(String, Row), LatencyStats> = HashMap::new();
        for process in &sample.processes {
            let key = self.key_of(process);
            let faults = process.faults.iter().filter_map(|f| {
                let class = FaultClass::try_from(f.class).ok()?;
                Some((Row::Fault(class), &f.latency))
            });
            let stalls = process.stalls.iter().filter_map(|s| {
                let kind = StallKind::try_from(s.kind).ok()?;
                Some((Row::Stall(kind), &s.latency))
            });
            for (row, latency) in faults.chain(stalls) {
                rows.entry((key.clone(), row)).or_default().merge(latency);
            }
        }
        for (key, stats) in rows {
            let series = self.processes.entry(key).or_default();
            series.rate.add(len_s, stats.count() as f64 / len_s);
            series
                .share
                .add(len_s, stats.total_ns() as f64 / 1e9 / len_s);
            if stats.count() > 0 {
                let s = stats.summary();
                for (values, ns) in series
                    .quantiles
                    .iter_mut()
                    .zip([s.p50_ns, s.p99_ns, s.p999_ns, s.max_ns])
                {
                    values.push(ns as f64);
                }
            }
        }
    }

    fn add_swap(&mut self, sample: &IntervalSample, len_s: f64) {
        // The machine-wide total is the tasks' sum, as in the model: every page has one doer.
        let pages_in: u64 = sample.swap_by_task.iter().map(|t| t.in_pages).sum();
        let pages_out: u64 = sample.swap_by_task.iter().map(|t| t.out_pages).sum();
        for (direction, pages) in [(Direction::In, pages_in), (Direction::Out, pages_out)] {
            self.swap
                .entry(direction)
                .or_default()
                .add(len_s, pages as f64 / len_s);
        }
        let mut by_key: HashMap<(String, Direction), u64> = HashMap::new();
        for memcg in &sample.swap_by_memcg {
            let path = self.memcg_paths.get(&memcg.memcg_id).map(String::as_str);
            let key = memcg_key(memcg.memcg_id, path);
            *by_key.entry((key.clone(), Direction::In)).or_default() += memcg.in_pages;
            *by_key.entry((key, Direction::Out)).or_default() += memcg.out_pages;
        }
        for (key, pages) in by_key {
            self.memcgs
                .entry(key)
                .or_default()
                .add(len_s, pages as f64 / len_s);
        }
    }

    /// The key of a process in this interval: its pid, or its best name so far.
    fn key_of(&mut self, process: &ProcessSample) -> String {
        if self.match_by == MatchBy::Pid {
            return process.pid.to_string();
        }
        let name = self
            .names
            .entry((process.pid, process.start_ns))
            .or_default();
        if !process.comm.is_empty() && (process.named || name.is_empty()) {
            name.clone_from(&process.comm);
        }
        name.clone()
    }
}

#[cfg(test)]
mod tests {
    use memtrace_common::FaultClass;

    use super::*;
    use crate::{
        report::fixture::{S, faults},
        samples::{CgroupName, ProcessExit, SwapByMemcg},
    };

    fn process(pid: u32, comm: &str, named: bool, minor: &[u64]) -> ProcessSample {
        ProcessSample {
            pid,
            start_ns: 1,
            comm: comm.into(),
            named,
            faults: vec![faults(FaultClass::Minor, minor)],
            ..ProcessSample::default()
        }
    }

    fn interval(index: u64, processes: Vec<ProcessSample>) -> IntervalSample {
        IntervalSample {
            index,
            start_ns: index * S,
            end_ns: (index + 1) * S,
            processes,
            ..IntervalSample::default()
        }
    }

    fn minor<'a>(series: &'a Series, key: &str) -> Option<&'a RowSeries> {
        series
            .processes
            .get(&(key.to_string(), Row::Fault(FaultClass::Minor)))
    }

    #[test]
    fn names_follow_the_models_rule_and_are_forgotten_at_exit() {
        let mut series = Series::new(MatchBy::Comm);
        series.apply(&interval(0, vec![process(7, "bash", false, &[100])]));
        series.apply(&interval(1, vec![process(7, "", false, &[100, 100])]));
        let mut exec = interval(2, vec![process(7, "postgres", true, &[300; 3])]);
        exec.exits.push(ProcessExit {
            pid: 7,
            start_ns: 1,
            exit_ns: 3 * S,
        });
        series.apply(&exec);
        let bash = minor(&series, "bash").expect("named bash at first");
        // Two intervals of 1 s with 1 and 2 faults: Σw·x = 3, Σw·x² = 5.
        assert_eq!((bash.rate.wx, bash.rate.wx2), (3.0, 5.0));
        assert_eq!(bash.quantiles[0], [100.0, 100.0]);
        let postgres = minor(&series, "postgres").expect("renamed by exec");
        assert_eq!(postgres.quantiles[3], [300.0]);
        assert!(series.names.is_empty(), "the exit forgets the name");
        assert_eq!(series.weights.intervals, 3);
    }

    #[test]
    fn processes_of_one_key_are_one_row_and_pids_keep_apart() {
        let two = || {
            interval(
                0,
                vec![
                    process(7, "worker", true, &[1_000]),
                    process(8, "worker", true, &[2_000, 2_000]),
                ],
            )
        };
        let mut by_comm = Series::new(MatchBy::Comm);
        by_comm.apply(&two());
        let worker = minor(&by_comm, "worker").expect("one row");
        assert_eq!(worker.rate.wx, 3.0);
        assert_eq!(worker.quantiles[0], [2_000.0], "the merged median");
        let mut by_pid = Series::new(MatchBy::Pid);
        by_pid.apply(&two());
        assert_eq!(minor(&by_pid, "7").map(|r| r.rate.wx), Some(1.0));
        assert_eq!(minor(&by_pid, "8").map(|r| r.rate.wx), Some(2.0));
    }

    #[test]
    fn an_interval_of_no_length_adds_no_weight() {
        let mut series = Series::new(MatchBy::Comm);
        let mut empty = interval(0, vec![process(7, "a", true, &[5])]);
        empty.end_ns = empty.start_ns;
        series.apply(&empty);
        assert_eq!(series.weights.intervals, 0);
        assert!(series.processes.is_empty());
    }

    #[test]
    fn swap_is_keyed_by_the_memcg_path_once_named() {
        let mut series = Series::new(MatchBy::Comm);
        let mut first = interval(0, Vec::new());
        first.cgroups.push(CgroupName {
            id: 5,
            path: Some("/box".into()),
            memory_limit_bytes: None,
        });
        let traffic = |id, in_pages| SwapByMemcg {
            memcg_id: id,
            out_pages: 0,
            in_pages,
        };
        first.swap_by_memcg = vec![traffic(5, 10), traffic(9, 4)];
        series.apply(&first);
        let mut second = interval(1, Vec::new());
        second.end_ns += S;
        second.swap_by_memcg = vec![traffic(5, 20)];
        series.apply(&second);
        let box_in = series.memcgs[&("/box".to_string(), Direction::In)];
        // 10 pages in 1 s, then 20 in 2 s: 10 a second each time, weighted 1 and 2.
        assert_eq!((box_in.wx, box_in.wx2), (30.0, 300.0));
        let unnamed = series.memcgs[&("(memcg inode 9)".to_string(), Direction::In)];
        assert_eq!(unnamed.wx, 4.0);
        assert_eq!(series.weights.w, 3.0);
    }
}
