//! The scenarios, on the live machine: each builds its sandbox, starts a workload paused,
//! attaches `memtrace record` to it, lets it run, and reads the kernel's own figures around
//! it; everything goes on drop.
use std::{
    fs::File,
    io::{Read, Write},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    MemcgObserved, Observed, Options, Vmstat,
    guard::{Guarded, Stop, Sysctl, TempFile},
    kmsg::KmsgTail,
    recorder::Recorder,
    rows::{self, plan},
};
use crate::{
    collect::{kswapd::NodeThreads, procfs::meminfo_kb, taskstats::Taskstats},
    error::Error,
    lab::{
        sandbox::{Memcg, MemcgLimits, Sandbox},
        workload::FaultCounters,
    },
};

const MIB: u64 = 1 << 20;
/// How long a paused workload may take to reach its pause.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the kernel log's kill line may lag behind the victim's exit.
const KMSG_TIMEOUT: Duration = Duration::from_secs(2);
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
/// What the global scenario leaves free beside its hugepage pool.
const GLOBAL_FREE_KB: u64 = 3 << 20;
/// The sparse file it reads into the page cache.
const GLOBAL_FILE_BYTES: u64 = 8 << 30;
/// How long kswapd takes to go back to sleep once the pressure is gone.
const KSWAPD_SETTLE: Duration = Duration::from_secs(2);

/// A scenario: how to run it, and the rows it yields.
pub struct Scenario {
    pub name: &'static str,
    pub what: String,
    pub run: fn() -> Result<Observed, Error>,
    pub rows: fn(&Observed) -> Vec<super::check::Row>,
}

/// The scenarios `options` ask for, in order.
pub fn all(options: Options) -> Vec<Scenario> {
    let mut list = vec![
        Scenario {
            name: "faults",
            what: format!(
                "reads {} MiB of a cold file through a mapping and touches {} MiB once, in a \
                 {} MiB memcg",
                plan::FILE_MIB,
                plan::ANON_MIB,
                plan::FAULTS_LIMIT_MIB
            ),
            run: faults,
            rows: rows::faults,
        },
        Scenario {
            name: "swap storm",
            what: format!(
                "writes and reads back {} MiB in a {} MiB memcg with {} MiB of zram swap",
                plan::STORM_MIB,
                plan::STORM_LIMIT_MIB,
                plan::STORM_SWAP_MIB
            ),
            run: swap_storm,
            rows: rows::swap_storm,
        },
        Scenario {
            name: "pages",
            what: format!(
                "touches {} MiB of huge-page memory, then reads {} MiB of a cold file \
                 sequentially through a mapping, in a {} MiB memcg",
                plan::THP_MIB,
                plan::SEQ_MIB,
                plan::FAULTS_LIMIT_MIB
            ),
            run: pages,
            rows: rows::pages,
        },
        Scenario {
            name: "memcg OOM",
            what: format!(
                "grows to {} MiB in a {} MiB memcg without swap until the kernel kills it",
                plan::HOG_MIB,
                plan::OOM_LIMIT_MIB
            ),
            run: memcg_oom,
            rows: rows::memcg_oom,
        },
    ];
    if options.global_reclaim {
        list.push(Scenario {
            name: "global reclaim",
            what: format!(
                "fragments {} GiB of memory, fills all but {} GiB of free memory with hugepages, \
                 then reads an {} GiB sparse file (machine-wide compaction and reclaim; traces \
                 every process)",
                plan::FRAGMENT_MIB >> 10,
                GLOBAL_FREE_KB >> 20,
                GLOBAL_FILE_BYTES >> 30
            ),
            run: global_reclaim,
            rows: rows::global_reclaim,
        });
    }
    list
}

fn faults() -> Result<Observed, Error> {
    let limits = MemcgLimits {
        memory_bytes: plan::FAULTS_LIMIT_MIB * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, None)?;
    let args = [
        "faults",
        "--file-mib",
        &plan::FILE_MIB.to_string(),
        "--anon-mib",
        &plan::ANON_MIB.to_string(),
        "--swap-mib",
        "0",
    ];
    observe(&sandbox.memcg, &args, None)
}

fn swap_storm() -> Result<Observed, Error> {
    let limits = MemcgLimits {
        memory_bytes: plan::STORM_LIMIT_MIB * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(plan::STORM_SWAP_MIB * MIB))?;
    let args = [
        "faults",
        "--file-mib",
        "0",
        "--anon-mib",
        "0",
        "--swap-mib",
        &plan::STORM_MIB.to_string(),
    ];
    observe(&sandbox.memcg, &args, None)
}

fn pages() -> Result<Observed, Error> {
    let limits = MemcgLimits {
        memory_bytes: plan::FAULTS_LIMIT_MIB * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, None)?;
    let args = [
        "pages",
        "--thp-mib",
        &plan::THP_MIB.to_string(),
        "--seq-mib",
        &plan::SEQ_MIB.to_string(),
    ];
    observe(&sandbox.memcg, &args, None)
}

fn memcg_oom() -> Result<Observed, Error> {
    let limits = MemcgLimits {
        memory_bytes: plan::OOM_LIMIT_MIB * MIB,
        swap_bytes: Some(0),
    };
    let sandbox = Sandbox::create(&limits, None)?;
    let args = [
        "oom-hog",
        "--mib",
        &plan::HOG_MIB.to_string(),
        "--step-mib",
        "16",
    ];
    let kmsg = KmsgTail::open();
    observe(&sandbox.memcg, &args, Some(kmsg))
}

/// Runs `memtrace workload --wait ARGS` in `memcg`, traced by `record --pid`.
fn observe(
    memcg: &Memcg,
    args: &[&str],
    kmsg: Option<Result<KmsgTail, String>>,
) -> Result<Observed, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating memtrace", e))?;
    let mut command = Command::new(exe);
    command
        .args(["workload", "--wait"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut workload = Guarded::spawn(&mut command, Stop::Kill, "the workload")?;
    let pid = workload.pid();
    memcg.add_pid(pid)?;
    wait_paused(pid)?;
    let recorder = Recorder::start(&["--pid", &pid.to_string()])?;
    // Paused in its read of stdin, it faults no more until released: from here on the
    // kernel's counters and memtrace's cover the same span.
    let before = Counters::read(Some(pid), Some(memcg))?;
    workload
        .stdin()
        .ok_or_else(|| Error::io("workload stdin", std::io::ErrorKind::BrokenPipe.into()))?
        .write_all(b"go\n")
        .map_err(|e| Error::io("starting the workload", e))?;
    // Its output (the workloads' counters, the hog's progress) ends when it exits.
    let mut output = Vec::new();
    if let Some(mut stdout) = workload.take_stdout() {
        let _ = stdout.read_to_end(&mut output);
    }
    workload.wait_exited()?;
    let after = Counters::read(Some(pid), Some(memcg))?;
    let delays = Taskstats::open()
        .and_then(|mut t| t.task(pid))
        .map_err(|e| e.to_string());
    workload.reap()?;
    let report = recorder.finish()?;
    let killed = kmsg.map(|tail| tail.and_then(|mut t| t.find_killed(pid, KMSG_TIMEOUT)));
    Ok(Observed {
        report,
        pid,
        stat: stat_delta(&before, &after),
        delays,
        memcg: Some(memcg_delta(memcg, &before, &after)),
        vmstat: Vmstat {
            before: before.vmstat,
            after: after.vmstat,
        },
        killed,
        output: String::from_utf8_lossy(&output).into_owned(),
        kswapd_cpu_ns: None,
    })
}

fn global_reclaim() -> Result<Observed, Error> {
    let hugepages: u64 = Sysctl::read(NR_HUGEPAGES)?
        .parse()
        .map_err(|_| Error::Sandbox {
            what: NR_HUGEPAGES.into(),
            reason: "not a number".into(),
        })?;
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| Error::io("reading /proc/meminfo", e))?;
    let kb = |key| meminfo_kb(&meminfo, key).unwrap_or(0);
    let pool = kb("MemFree").saturating_sub(GLOBAL_FREE_KB) / kb("Hugepagesize").max(1);
    let path = PathBuf::from(format!(
        "/var/tmp/memtrace-selfcheck-sparse-{}",
        std::process::id()
    ));
    let _file = TempFile(&path);
    File::create(&path)
        .and_then(|f| f.set_len(GLOBAL_FILE_BYTES))
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    // Memory left fragmented (half of its pages freed, each beside a page still in use), so
    // that the pool's 2 MiB allocations find no free block and compact directly.
    let exe = std::env::current_exe().map_err(|e| Error::io("locating memtrace", e))?;
    let mut fragment = Command::new(exe);
    fragment
        .args([
            "workload",
            "fragment",
            "--mib",
            &plan::FRAGMENT_MIB.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut fragmenter = Guarded::spawn(&mut fragment, Stop::Kill, "the fragmenter")?;
    let mut ready = [0u8; 6];
    fragmenter
        .take_stdout()
        .ok_or_else(|| Error::io("fragmenter stdout", std::io::ErrorKind::BrokenPipe.into()))?
        .read_exact(&mut ready)
        .map_err(|e| Error::io("waiting for the fragmenter", e))?;
    let kswapd = NodeThreads::kswapd();
    let recorder = Recorder::start(&[])?;
    let before = Counters::read(None, None)?;
    let kswapd_before = kswapd.total_ns();
    let _pool = Sysctl::set(NR_HUGEPAGES, &(hugepages + pool).to_string())?;
    let mut command = Command::new("cat");
    command
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut reader = Guarded::spawn(&mut command, Stop::Kill, "cat")?;
    let pid = reader.pid();
    reader.wait_exited()?;
    let after = Counters::read(Some(pid), None)?;
    let delays = Taskstats::open()
        .and_then(|mut t| t.task(pid))
        .map_err(|e| e.to_string());
    let status = reader.reap()?;
    // kswapd sleeps again once the pressure is gone: its CPU time stops growing.
    std::thread::sleep(KSWAPD_SETTLE);
    let kswapd_after = kswapd.total_ns();
    recorder.interrupt();
    let report = recorder.finish()?;
    drop(fragmenter);
    if !status.success() {
        return Err(Error::io(
            format!("cat {}", path.display()),
            std::io::Error::other(status.to_string()),
        ));
    }
    Ok(Observed {
        report,
        pid,
        // A new process: its whole life was traced.
        stat: after.stat,
        delays,
        memcg: None,
        vmstat: Vmstat {
            before: before.vmstat,
            after: after.vmstat,
        },
        killed: None,
        output: String::new(),
        kswapd_cpu_ns: kswapd_before
            .zip(kswapd_after)
            .map(|(b, a)| a.saturating_sub(b)),
    })
}

/// The counters read at each end of a run.
struct Counters {
    stat: Result<FaultCounters, String>,
    vmstat: String,
    oom_kills: Result<u64, String>,
    pswpin: Option<u64>,
    pswpout: Option<u64>,
}

impl Counters {
    fn read(pid: Option<u32>, memcg: Option<&Memcg>) -> Result<Self, Error> {
        let stat = pid.map_or(Ok(FaultCounters::default()), |pid| {
            FaultCounters::read(&pid.to_string()).map_err(|e| format!("/proc/{pid}/stat: {e}"))
        });
        let vmstat = std::fs::read_to_string("/proc/vmstat")
            .map_err(|e| Error::io("reading /proc/vmstat", e))?;
        let (oom_kills, pswpin, pswpout) = match memcg {
            Some(memcg) => (
                memcg.oom_kills().map_err(|e| e.to_string()),
                memcg.stat("pswpin").ok().flatten(),
                memcg.stat("pswpout").ok().flatten(),
            ),
            None => (Err("no memcg".to_string()), None, None),
        };
        Ok(Self {
            stat,
            vmstat,
            oom_kills,
            pswpin,
            pswpout,
        })
    }
}

fn stat_delta(before: &Counters, after: &Counters) -> Result<FaultCounters, String> {
    Ok(after.stat.clone()?.since(&before.stat.clone()?))
}

fn memcg_delta(memcg: &Memcg, before: &Counters, after: &Counters) -> MemcgObserved {
    let delta = |b: Option<u64>, a: Option<u64>| Some(a?.saturating_sub(b?));
    MemcgObserved {
        path: memcg.path().display().to_string(),
        oom_kills: match (&before.oom_kills, &after.oom_kills) {
            (Ok(b), Ok(a)) => Ok(a.saturating_sub(*b)),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        },
        pswpin: delta(before.pswpin, after.pswpin),
        pswpout: delta(before.pswpout, after.pswpout),
    }
}

/// Waits until the workload sits in its read of stdin: named (`mt-workload`) and asleep.
/// There is no notification for that; the wait is short and bounded.
fn wait_paused(pid: u32) -> Result<(), Error> {
    let deadline = Instant::now() + PAUSE_TIMEOUT;
    let path = format!("/proc/{pid}/stat");
    loop {
        let stat = std::fs::read_to_string(&path).map_err(|e| Error::io(path.clone(), e))?;
        if paused(&stat) {
            return Ok(());
        }
        if super::guard::interrupted().is_some() {
            return Err(Error::io(
                format!("workload {pid}"),
                std::io::ErrorKind::Interrupted.into(),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::io(
                format!("workload {pid}"),
                std::io::Error::other("it never paused"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A stat line of the workload blocked in its read of stdin: after `set_comm`, the only
/// interruptible sleep before it is released.
fn paused(stat: &str) -> bool {
    let Some((comm, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else {
        return false;
    };
    comm == "mt-workload" && rest.starts_with('S')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_is_an_interruptible_sleep_after_the_rename() {
        assert!(paused("42 (mt-workload) S 1 42 42 0 -1 4194304 90 0"));
        assert!(!paused("42 (mt-workload) R 1 42 42 0 -1 4194304 90 0"));
        assert!(!paused("42 (mt-workload) D 1 42 42 0 -1 4194304 90 0"));
        assert!(!paused("42 (memtrace) S 1 42 42 0 -1 4194304 90 0"));
        assert!(!paused("garbage"));
    }

    #[test]
    fn the_scenarios_run_in_order_and_global_reclaim_only_when_asked() {
        let names = |o| all(o).iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(Options::default()),
            ["faults", "swap storm", "pages", "memcg OOM"]
        );
        assert_eq!(
            names(Options {
                global_reclaim: true
            }),
            [
                "faults",
                "swap storm",
                "pages",
                "memcg OOM",
                "global reclaim"
            ]
        );
    }
}
