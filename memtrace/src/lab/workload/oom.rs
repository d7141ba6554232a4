//! OOM workloads. A hog allocates and touches anonymous memory in steps, says how far it got
//! after each step (one JSON line), then holds it all until killed: in a memcg smaller than
//! `mib` without swap, the OOM killer ends it. A pair is two hogs, a paused victim and a grower
//! that triggers the kill, so the victim is not the trigger.
use std::{
    io::{self, BufRead, BufReader, Lines, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::{CommandExt, ExitStatusExt},
    },
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    time::Duration,
};

use super::mapping::Mapping;

/// What the hog does.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HogPlan {
    /// Total anonymous memory to hold.
    pub mib: usize,
    /// Allocated and touched per step.
    pub step_mib: usize,
    /// Written to /proc/self/oom_score_adj first.
    pub oom_score_adj: Option<i32>,
}

/// One progress line.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HogProgress {
    pub pid: u32,
    pub allocated_mib: usize,
    /// All of `mib` is held; the hog now sleeps until killed.
    pub done: bool,
}

/// Maps and touches `mib` of anonymous memory (4 KiB pages: steady, predictable charging),
/// which the hog holds until it dies.
fn map_and_touch(mib: usize) -> io::Result<Mapping> {
    let map = Mapping::anonymous(mib << 20)?;
    map.touch_pages(true);
    Ok(map)
}

/// Runs the hog; returns only on error (it holds its memory until killed).
pub fn run(plan: &HogPlan, out: &mut impl Write) -> io::Result<()> {
    if let Some(adj) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())?;
    }
    let step = plan.step_mib.max(1);
    let mut progress = HogProgress {
        pid: std::process::id(),
        ..HogProgress::default()
    };
    let mut held = Vec::new();
    while progress.allocated_mib < plan.mib {
        let mib = step.min(plan.mib - progress.allocated_mib);
        held.push(map_and_touch(mib)?);
        progress.allocated_mib += mib;
        progress.done = progress.allocated_mib >= plan.mib;
        writeln!(
            out,
            "{}",
            serde_json::to_string(&progress).map_err(io::Error::other)?
        )?;
        out.flush()?;
    }
    if plan.mib == 0 {
        progress.done = true;
        writeln!(
            out,
            "{}",
            serde_json::to_string(&progress).map_err(io::Error::other)?
        )?;
        out.flush()?;
    }
    loop {
        std::hint::black_box(&held);
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The two-process OOM. A holds `victim_mib` with oom_score_adj 1000 and pauses; then B grows
/// in steps of `step_mib` towards `grower_mib`. In a memcg smaller than both together (without
/// swap) B's charge invokes the OOM killer, which picks A: the kill runs in B's context while
/// A, asleep, only has to die, and may do so before the kill is marked. To give that race
/// every chance on a busy machine, A waits pinned to one CPU as a real-time (SCHED_FIFO) task
/// and B runs pinned to another: A runs the moment its SIGKILL wakes it, while B is still in
/// the OOM killer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairPlan {
    pub victim_mib: usize,
    pub grower_mib: usize,
    pub step_mib: usize,
}

/// How the pair ended, as their parent (this process) saw it through `waitpid`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PairOutcome {
    /// A, the paused holder, and B, the grower.
    pub victim_pid: u32,
    pub grower_pid: u32,
    /// The signal that ended A; `None` if it exited by itself.
    pub victim_signal: Option<i32>,
    /// A waited as a SCHED_FIFO task on a CPU apart from B's (`false`: the machine has one
    /// CPU, or the policy was refused).
    pub victim_realtime: bool,
    /// B held all of `grower_mib` once A was gone; `false`: B died first.
    pub grower_held: bool,
    /// The signal that ended B, when it died before holding all.
    pub grower_signal: Option<i32>,
}

/// The oom_score_adj of the victim: the highest, so the kernel picks it whatever its size.
const VICTIM_OOM_SCORE_ADJ: i32 = 1000;

/// How long a hog may take to die once it should: B's last charges only succeed once A's
/// memory is freed, so A is gone, or nearly, when B holds all.
const EXIT_WAIT: Duration = Duration::from_secs(30);

/// Runs the pair (in the caller's memcg: the children inherit it) and reports how it ended.
/// Fails when A dies before holding its memory, or outlives B's growth (no OOM chose it).
pub fn run_pair(plan: &PairPlan) -> io::Result<PairOutcome> {
    // Two CPUs or more: B on the first, A on the second.
    let cpus = allowed_cpus()?;
    let (grower_cpu, victim_cpu) = match cpus[..] {
        [first, second, ..] => (Some(first), Some(second)),
        _ => (None, None),
    };
    let mut victim = PairHog::spawn(
        plan.victim_mib,
        plan.victim_mib,
        VICTIM_OOM_SCORE_ADJ,
        victim_cpu,
    )?;
    if !victim.held_all()? {
        return Err(io::Error::other(
            "the victim died before holding its memory",
        ));
    }
    // Real-time only now that it sleeps: its allocation must not starve the CPU's other tasks.
    let victim_realtime = victim_cpu.is_some() && make_realtime(victim.pid());
    let mut grower = PairHog::spawn(plan.grower_mib, plan.step_mib, 0, grower_cpu)?;
    let grower_held = grower.held_all()?;
    let Some(victim_status) = victim.wait_exit(EXIT_WAIT)? else {
        return Err(io::Error::other(format!(
            "the victim {} outlived the grower's growth: no OOM kill chose it",
            victim.pid()
        )));
    };
    // A grower that holds all is ended on drop; one that died is reaped here.
    let grower_signal = if grower_held {
        None
    } else {
        grower.wait_exit(EXIT_WAIT)?.and_then(|s| s.signal())
    };
    Ok(PairOutcome {
        victim_pid: victim.pid(),
        grower_pid: grower.pid(),
        victim_signal: victim_status.signal(),
        victim_realtime,
        grower_held,
        grower_signal,
    })
}

/// The CPUs this process may run on.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
    // SAFETY: `set` is initialized; CPU_ISSET reads one bit below CPU_SETSIZE.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Keeps the calling process on `cpu` (async-signal-safe: it runs between fork and exec).
fn pin_self(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (it came from `allowed_cpus`).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `pid` a SCHED_FIFO task of the lowest real-time priority, so that it runs as soon as
/// it wakes; false where that is refused (no CAP_SYS_NICE).
fn make_realtime(pid: u32) -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: a valid sched_param; `pid` is our child.
    unsafe { libc::sched_setscheduler(pid as libc::pid_t, libc::SCHED_FIFO, &param) == 0 }
}

/// One hog of the pair: a `memtrace workload oom-hog` child, its progress lines piped to us.
/// Killed and reaped on drop.
struct PairHog {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PairHog {
    /// Starts a hog, on `cpu` only when given.
    fn spawn(
        mib: usize,
        step_mib: usize,
        oom_score_adj: i32,
        cpu: Option<usize>,
    ) -> io::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["workload", "oom-hog", "--mib", &mib.to_string()])
            .args(["--step-mib", &step_mib.to_string()])
            .args(["--oom-score-adj", &oom_score_adj.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(cpu) = cpu {
            // SAFETY: the closure only makes one async-signal-safe system call.
            unsafe { command.pre_exec(move || pin_self(cpu)) };
        }
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("the hog has no stdout"))?;
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads progress until the hog holds all (true) or its output ends because it died.
    fn held_all(&mut self) -> io::Result<bool> {
        for line in self.lines.by_ref() {
            let progress: HogProgress = serde_json::from_str(&line?).map_err(io::Error::other)?;
            if progress.done {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Waits at most `wait` for the hog to end by itself, watching it through a pidfd (no
    /// polling loop), and reaps it.
    fn wait_exit(&mut self, wait: Duration) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(Some(status));
        }
        // SAFETY: plain syscall; a non-negative result is a new fd that we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid(), 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just handed us this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd. POLLIN: the process has exited (a zombie to reap).
        if unsafe { libc::poll(&mut poll, 1, ms) } != 1 {
            return Ok(None);
        }
        self.child.wait().map(Some)
    }
}

impl Drop for PairHog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
