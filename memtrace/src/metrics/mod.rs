//! The exporter's model: cumulative counters and histograms per memory cgroup, folded from the
//! same [`IntervalSample`]s as the report's model, for `memtrace serve` to expose.
//!
//! Nothing is kept per process: a process's faults and stalls go to its memory cgroup's series
//! (the memcg the kernel programs saw it in). Memory stays bounded on a machine that runs for
//! days: a cgroup's series go once the cgroup is removed and nothing happened in it for
//! [`MetricsSettings::expire_ns`]; the pid churn of a fork-heavy machine costs nothing here.
pub mod hist;
pub mod labels;

use std::collections::{BTreeMap, HashMap};

use memtrace_common::{EVENT_KIND_SLOTS, FAULT_CLASSES, FaultClass, STALL_KINDS, StallKind};

pub use hist::Histogram;
pub use labels::Mount;
use labels::{KubeIds, kube_ids, relative_path};

use crate::{
    model::oom::OomKill,
    samples::{CgroupName, IntervalSample, ProcessSample},
};

/// How long a removed cgroup's series stay after its last event, by default: ten scrape
/// intervals of a slow (one-minute) Prometheus, so that the last increase is scraped.
pub const DEFAULT_EXPIRE_NS: u64 = 10 * 60 * 1_000_000_000;

/// What the fold needs to know besides the samples.
#[derive(Clone, Debug)]
pub struct MetricsSettings {
    /// A removed cgroup's series are dropped this long after its last event.
    pub expire_ns: u64,
    /// The cgroup hierarchies' mounts: `cgroup` labels are relative to their roots.
    pub mounts: Vec<Mount>,
    /// Processes that also get series of their own (`serve --per-process`, only for `--pid`
    /// targets: the list bounds them).
    pub per_process: Vec<u32>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            expire_ns: DEFAULT_EXPIRE_NS,
            mounts: Vec::new(),
            per_process: Vec::new(),
        }
    }
}

/// The labels of one memory cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupLabels {
    /// The directory, as recorded (absolute), if it was found.
    pub dir: Option<String>,
    /// Relative to its hierarchy's root: the `cgroup` label.
    pub path: String,
    /// Pod and container, from a Kubernetes path.
    pub kube: KubeIds,
}

/// Everything measured in one memory cgroup.
#[derive(Clone, Debug, Default)]
pub struct CgroupSeries {
    /// Fault latency per class (`FaultClass as usize`), once the class was seen.
    pub faults: [Option<Histogram>; FAULT_CLASSES],
    /// Faults taken without a CPU exception: counted, not timed.
    pub untimed_faults: u64,
    /// Stall latency per kind (`StallKind as usize`).
    pub stalls: [Option<Histogram>; STALL_KINDS],
    /// Pages of this memcg written to and read back from swap.
    pub swap_out_pages: u64,
    pub swap_in_pages: u64,
    /// CLOCK_MONOTONIC end of the last interval with an event here.
    pub last_active_ns: u64,
}

/// Faults and stalls of one traced process (`--per-process`).
#[derive(Clone, Debug, Default)]
pub struct ProcessSeries {
    /// Its name, as the samples last gave it.
    pub comm: String,
    /// Fault latency per class, untimed faults, stall latency per kind, as for a cgroup.
    pub faults: [Option<Histogram>; FAULT_CLASSES],
    pub untimed_faults: u64,
    pub stalls: [Option<Histogram>; STALL_KINDS],
}

/// OOM kills of one domain.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OomSeries {
    pub kills: u64,
    /// The last victim's points (`oom_badness()`) and score (points per mille of the domain).
    pub last_points: i64,
    pub last_score_per_mille: i64,
    /// When the last kill happened (CLOCK_MONOTONIC).
    pub last_kill_ns: u64,
    /// The limiting memcg's directory (memcg OOMs).
    pub dir: Option<String>,
}

/// kswapd of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KswapdSeries {
    pub wakes: u64,
    pub cpu_ns: u64,
}

/// The exporter's state: a fold of samples and OOM kills.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    settings: MetricsSettings,
    /// Series by memcg id (the inode of its directory; 0: unknown).
    cgroups: HashMap<u64, CgroupSeries>,
    /// Labels by memcg id, as named by the samples.
    names: HashMap<u64, CgroupLabels>,
    /// OOM kills by (constraint, cgroup label).
    oom: BTreeMap<(String, String), OomSeries>,
    /// Processes of [`MetricsSettings::per_process`], by pid.
    pub processes: BTreeMap<u32, ProcessSeries>,
    /// Kernel-side records lost, by `EventKind` id (cumulative as the kernel counts them).
    pub lost: [u64; EVENT_KIND_SLOTS as usize],
    /// Records that did not decode.
    pub malformed: u64,
    /// kswapd by node.
    pub kswapd: BTreeMap<u32, KswapdSeries>,
    /// Intervals folded, and the end of the last one.
    pub intervals: u64,
    pub last_end_ns: u64,
    /// When [`Metrics::expire`] last ran.
    last_expire_ns: u64,
}

impl Metrics {
    /// An empty state.
    pub fn new(settings: MetricsSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Adds one interval.
    pub fn apply(&mut self, sample: &IntervalSample) {
        for name in &sample.cgroups {
            self.name(name);
        }
        let now = sample.end_ns;
        for process in &sample.processes {
            let series = self.cgroups.entry(process.memcg_id).or_default();
            series.last_active_ns = now;
            series.untimed_faults += process.untimed_faults;
            fold_latencies(&mut series.faults, &mut series.stalls, process);
            if self.settings.per_process.contains(&process.pid) {
                let series = self.processes.entry(process.pid).or_default();
                if !process.comm.is_empty() {
                    series.comm.clone_from(&process.comm);
                }
                series.untimed_faults += process.untimed_faults;
                fold_latencies(&mut series.faults, &mut series.stalls, process);
            }
        }
        for swap in &sample.swap_by_memcg {
            let series = self.cgroups.entry(swap.memcg_id).or_default();
            series.last_active_ns = now;
            series.swap_in_pages += swap.in_pages;
            series.swap_out_pages += swap.out_pages;
        }
        for node in &sample.kswapd {
            let series = self.kswapd.entry(node.nid).or_default();
            series.wakes += node.wakes;
            series.cpu_ns += node.cpu_ns.unwrap_or(0);
        }
        for kill in &sample.oom.kills {
            self.add_oom(&OomKill::from_sample(kill));
        }
        self.lost = sample.counters.lost;
        self.malformed += sample.malformed;
        self.intervals += 1;
        self.last_end_ns = now;
    }

    /// Counts one OOM kill in its domain: the memcg that hit its limit, or the root
    /// (`/`) for a machine-wide, cpuset or mempolicy OOM.
    fn add_oom(&mut self, kill: &OomKill) {
        let dir = kill.domain.cgroup.as_ref().map(|p| p.display().to_string());
        let cgroup = dir.as_deref().map_or_else(
            || "/".to_string(),
            |d| relative_path(d, &self.settings.mounts),
        );
        let key = (kill.domain.constraint.name().to_string(), cgroup);
        let series = self.oom.entry(key).or_default();
        series.kills += 1;
        series.last_points = kill.badness.points;
        series.last_score_per_mille = kill.badness.score_per_mille;
        series.last_kill_ns = kill.kill_ns;
        series.dir = dir;
    }

    /// Whether [`Metrics::expire`] is due: a tenth of the expiry time after its last run, so
    /// that a series goes at most 10 % late and idle cgroups are not looked up every interval.
    pub fn expire_due(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.last_expire_ns) >= self.settings.expire_ns / 10
    }

    /// Drops the series of cgroups that are gone (`exists` says, given a directory) and saw
    /// nothing for the expiry time. Series of unknown directories only need the time.
    pub fn expire(&mut self, now_ns: u64, exists: impl Fn(&str) -> bool) {
        self.last_expire_ns = now_ns;
        let expire_ns = self.settings.expire_ns;
        let idle = |last: u64| now_ns.saturating_sub(last) >= expire_ns;
        let names = &self.names;
        let gone = |id: &u64| {
            names
                .get(id)
                .and_then(|n| n.dir.as_deref())
                .is_none_or(|dir| !exists(dir))
        };
        self.cgroups
            .retain(|id, series| !(idle(series.last_active_ns) && gone(id)));
        let cgroups = &self.cgroups;
        self.names.retain(|id, _| cgroups.contains_key(id));
        self.oom.retain(|_, series| {
            !(idle(series.last_kill_ns) && series.dir.as_deref().is_none_or(|d| !exists(d)))
        });
        if self.cgroups.capacity() > 4 * self.cgroups.len().max(64) {
            self.cgroups.shrink_to_fit();
            self.names.shrink_to_fit();
        }
    }

    /// Keeps the labels of a memcg named by a sample.
    fn name(&mut self, name: &CgroupName) {
        let labels = match &name.path {
            Some(dir) => {
                let path = relative_path(dir, &self.settings.mounts);
                CgroupLabels {
                    dir: Some(dir.clone()),
                    kube: kube_ids(&path),
                    path,
                }
            }
            None => CgroupLabels::default(),
        };
        self.names.insert(name.id, labels);
    }

    /// The labels of a memcg: its path when it was named, else its id.
    pub fn labels(&self, id: u64) -> CgroupLabels {
        match self.names.get(&id) {
            Some(labels) if !labels.path.is_empty() => labels.clone(),
            _ if id == 0 => CgroupLabels {
                path: "(unknown)".to_string(),
                ..CgroupLabels::default()
            },
            _ => CgroupLabels {
                path: format!("(id {id})"),
                ..CgroupLabels::default()
            },
        }
    }

    /// Every cgroup with series, by id (sorted, so that expositions are stable).
    pub fn cgroups(&self) -> Vec<(u64, &CgroupSeries)> {
        let mut all: Vec<(u64, &CgroupSeries)> =
            self.cgroups.iter().map(|(id, s)| (*id, s)).collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// OOM kills by (constraint, cgroup label).
    pub fn oom(&self) -> &BTreeMap<(String, String), OomSeries> {
        &self.oom
    }

    /// Series groups held: cgroups with any series, OOM domains and `--per-process` processes.
    pub fn tracked(&self) -> usize {
        self.cgroups.len() + self.oom.len() + self.processes.len()
    }
}

/// Adds a process's faults and stalls of one interval to histograms per class and kind.
fn fold_latencies(
    faults: &mut [Option<Histogram>; FAULT_CLASSES],
    stalls: &mut [Option<Histogram>; STALL_KINDS],
    process: &ProcessSample,
) {
    for class in &process.faults {
        if let Ok(c) = FaultClass::try_from(class.class) {
            faults[c as usize]
                .get_or_insert_with(Histogram::default)
                .add(&class.latency);
        }
    }
    for stall in &process.stalls {
        if let Ok(k) = StallKind::try_from(stall.kind) {
            stalls[k as usize]
                .get_or_insert_with(Histogram::default)
                .add(&stall.latency);
        }
    }
}

#[cfg(test)]
mod tests;
