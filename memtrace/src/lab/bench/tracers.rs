//! The tracers the benchmark compares: memtrace itself (run as the `memtrace record` binary,
//! exactly what users run), bpftrace doing the same measurement, and `perf stat` counting.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use super::child::{Daemon, Ready};
use crate::{Error, collect::floor::FloorKind};

/// The bpftrace equivalent of memtrace's fault timing: start at the exception tracepoint, end
/// at the perf software event, one histogram per process.
pub const BPFTRACE_SCRIPT: &str = "\
tracepoint:exceptions:page_fault_user { @s[tid] = nsecs; }
software:minor-faults:1 /@s[tid]/ { @h[pid] = hist(nsecs - @s[tid]); delete(@s[tid]); }
software:major-faults:1 /@s[tid]/ { @h[pid] = hist(nsecs - @s[tid]); delete(@s[tid]); }
";

/// The bpftrace row's label.
pub const BPFTRACE_LABEL: &str = "bpftrace (same timing, hist per pid)";
/// The perf row's label.
pub const PERF_STAT_LABEL: &str = "perf stat -e page-faults -a";

/// How long a tracer may take to start (bpftrace compiles its script first).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a tracer may take to write its report after SIGINT.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// One way of tracing a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracer {
    /// `memtrace record --quiet` with this `--fault-end` (auto, perf or memcg); with `faults_only`,
    /// only the fault hooks (no reclaim, swap or kswapd ones); with `recording`, also `-o` (a
    /// recording beside the JSON report); with `stacks`, `--stacks` (the page-allocation hook
    /// and a stack walk for every page a fault brings in).
    Memtrace {
        fault_end: &'static str,
        faults_only: bool,
        recording: bool,
        stacks: bool,
    },
    /// memtrace's defaults with its process stopped (SIGSTOP) while the loop runs, resumed
    /// before it is stopped: what the kernel side costs when the reader falls behind.
    ReaderStopped,
    /// `memtrace serve` on a loopback port, scraped every `scrape_ms` by a client of the bench
    /// (as Prometheus would), from its start until it stops.
    Serve { scrape_ms: u64 },
    /// The floor (`memtrace workload bench floor --kind KIND`): the cheapest programs on
    /// memtrace's hooks: `empty`, `timed` (timestamps at fault start and end, summed per CPU,
    /// no attribution), `attributed` (the same, and each side reads its thread's ids) or
    /// `switch` (an empty program on sched_switch).
    Floor { kind: FloorKind },
    /// bpftrace running [`BPFTRACE_SCRIPT`].
    Bpftrace { binary: PathBuf },
    /// `perf stat -e page-faults -a`: counting only.
    PerfStat { binary: PathBuf },
}

impl Tracer {
    /// The label of the tracer in the table.
    pub fn label(&self) -> String {
        match self {
            Self::Memtrace {
                fault_end,
                faults_only,
                recording,
                stacks,
            } => {
                let mut label = String::from("memtrace record");
                if *recording {
                    label.push_str(" -o FILE");
                }
                if *stacks {
                    label.push_str(" --stacks");
                }
                if *fault_end != "auto" {
                    label.push_str(&format!(" --fault-end {fault_end}"));
                }
                if *faults_only {
                    label.push_str(" --faults-only");
                }
                if self == &MEMTRACE {
                    label.push_str(" (defaults: memcg fault end here, all hooks)");
                }
                label
            }
            Self::ReaderStopped => "memtrace record, its reader stopped (SIGSTOP) meanwhile".into(),
            Self::Serve { scrape_ms } => {
                format!("memtrace serve, scraped every {}", scrape_label(*scrape_ms))
            }
            Self::Floor { kind } => match kind {
                FloorKind::Empty => {
                    "floor: empty programs on page_fault_user + count_memcg_events".into()
                }
                FloorKind::Timed => "floor: the same, timing each fault (no attribution)".into(),
                FloorKind::Attributed => {
                    "floor: the same, and reading each side's thread (attribution's least)".into()
                }
                FloorKind::Switch => "floor: an empty program on sched_switch".into(),
            },
            Self::Bpftrace { .. } => BPFTRACE_LABEL.into(),
            Self::PerfStat { .. } => PERF_STAT_LABEL.into(),
        }
    }

    /// Whether memtrace's own targets apply to this row (the others are for comparison).
    pub fn is_memtrace(&self) -> bool {
        matches!(
            self,
            Self::Memtrace { .. } | Self::ReaderStopped | Self::Serve { .. }
        )
    }

    /// Whether its row gives its multiple of the timed floor: memtrace's rows, and the floor
    /// that also attributes each fault, which shows what attribution alone costs here.
    pub fn shows_floor_multiple(&self) -> bool {
        self.is_memtrace() || *self == ATTRIBUTED_FLOOR
    }

    /// Whether it writes a JSON report (with the records it lost).
    pub fn writes_report(&self) -> bool {
        matches!(self, Self::Memtrace { .. } | Self::ReaderStopped)
    }

    /// Whether its process is to be stopped while the workload runs.
    pub fn stops_reader(&self) -> bool {
        matches!(self, Self::ReaderStopped)
    }

    /// Starts the tracer system-wide and returns once it traces. `json` is where memtrace
    /// writes its report (ignored by the others).
    pub fn start(&self, memtrace: &Path, json: Option<&Path>) -> Result<Daemon, Error> {
        let (command, ready) = match self {
            Self::ReaderStopped => return MEMTRACE.start(memtrace, json),
            Self::Memtrace {
                fault_end,
                faults_only,
                recording,
                stacks,
            } => {
                let mut command = Command::new(memtrace);
                command.args(["record", "--quiet", "--fault-end", fault_end]);
                if *faults_only {
                    command.arg("--faults-only");
                }
                if *stacks {
                    command.arg("--stacks");
                }
                if let Some(path) = json {
                    command.arg("--json").arg(path);
                    if *recording {
                        // Beside the report: `TempReport` removes both.
                        command.arg("-o").arg(path.with_extension("mtr"));
                    }
                }
                (command, MEMTRACE_READY)
            }
            Self::Serve { scrape_ms } => {
                let addr = free_loopback()?;
                let mut command = Command::new(memtrace);
                command.args(["serve", "--listen", &addr]);
                let daemon = Daemon::start(command, MEMTRACE_READY, START_TIMEOUT)?;
                scrape_until_gone(addr, Duration::from_millis(*scrape_ms));
                return Ok(daemon);
            }
            Self::Floor { kind } => {
                let mut command = Command::new(memtrace);
                command.args(["workload", "bench", "floor", "--kind", kind.name()]);
                (command, MEMTRACE_READY)
            }
            Self::Bpftrace { binary } => {
                let mut command = Command::new(binary);
                command.args(["-e", BPFTRACE_SCRIPT]);
                // Its "Attaching N probes..." line comes on stdout once the probes are in.
                (command, ready(false, "Attaching"))
            }
            Self::PerfStat { binary } => {
                let mut command = Command::new(binary);
                // -D 1 makes perf say "Events enabled" once it counts: a ready line.
                command.args(["stat", "-e", "page-faults", "-a", "-D", "1"]);
                (command, ready(true, "Events enabled"))
            }
        };
        Daemon::start(command, ready, START_TIMEOUT)
    }
}

/// The timed floor, the yardstick of memtrace's per-fault cost.
pub const TIMED_FLOOR: Tracer = Tracer::Floor {
    kind: FloorKind::Timed,
};

/// The timed floor that also reads each side's thread: the least a tool that attributes
/// faults to threads must pay.
pub const ATTRIBUTED_FLOOR: Tracer = Tracer::Floor {
    kind: FloorKind::Attributed,
};

/// memtrace as users run it by default: every hook, faults ended by the perf events.
pub const MEMTRACE: Tracer = Tracer::Memtrace {
    fault_end: "auto",
    faults_only: false,
    recording: false,
    stacks: false,
};

/// `1 s`, `250 ms`.
fn scrape_label(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// A loopback address with a port free now.
fn free_loopback() -> Result<String, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("finding a free port for serve", e))?;
    listener
        .local_addr()
        .map(|a| a.to_string())
        .map_err(|e| Error::io("finding a free port for serve", e))
}

/// Scrapes `http://addr/metrics` every `every` on a thread of its own until the server is
/// gone (refuses the connection), reading each response to its end.
fn scrape_until_gone(addr: String, every: Duration) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(every);
            let Ok(mut stream) = std::net::TcpStream::connect(&addr) else {
                return;
            };
            let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut body = Vec::new();
            if stream.write_all(request.as_bytes()).is_err()
                || stream.read_to_end(&mut body).is_err()
            {
                return;
            }
        }
    });
}

/// What `memtrace record` prints on stderr once every hook is attached.
pub const MEMTRACE_READY: Ready = ready(true, "memtrace: tracing");

const fn ready(on_stderr: bool, marker: &'static str) -> Ready {
    Ready { on_stderr, marker }
}

/// Finds `name` in $PATH (or the usual system directories when PATH is unset).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// bpftrace, installed with apt-get when absent and `install` is set; the reason when not.
pub fn bpftrace(install: bool) -> Result<PathBuf, String> {
    if let Some(path) = find_program("bpftrace") {
        return Ok(path);
    }
    if !install {
        return Err("bpftrace not installed; --quick does not install it".into());
    }
    progress!("memtrace bench: installing bpftrace with apt-get");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "bpftrace"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get install bpftrace failed ({status})"));
    }
    find_program("bpftrace").ok_or_else(|| "bpftrace not found after apt-get".into())
}

/// perf, or the reason it cannot be used.
pub fn perf() -> Result<PathBuf, String> {
    find_program("perf").ok_or_else(|| "perf not installed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let t = Tracer::Memtrace {
            fault_end: "auto",
            faults_only: true,
            recording: false,
            stacks: false,
        };
        assert_eq!(t.label(), "memtrace record --faults-only");
        assert_eq!(
            MEMTRACE.label(),
            "memtrace record (defaults: memcg fault end here, all hooks)"
        );
        let memcg = Tracer::Memtrace {
            fault_end: "memcg",
            faults_only: false,
            recording: false,
            stacks: false,
        };
        assert_eq!(memcg.label(), "memtrace record --fault-end memcg");
        let recording = Tracer::Memtrace {
            fault_end: "auto",
            faults_only: false,
            recording: true,
            stacks: false,
        };
        assert_eq!(recording.label(), "memtrace record -o FILE");
        assert!(t.is_memtrace());
        let p = Tracer::PerfStat {
            binary: "/usr/bin/perf".into(),
        };
        assert!(!p.is_memtrace());
        let serve = Tracer::Serve { scrape_ms: 100 };
        assert_eq!(serve.label(), "memtrace serve, scraped every 100 ms");
        assert!(serve.is_memtrace() && !serve.writes_report());
        let stopped = Tracer::ReaderStopped;
        assert!(stopped.is_memtrace() && stopped.writes_report() && stopped.stops_reader());
        assert!(!MEMTRACE.stops_reader());
        assert_eq!(scrape_label(2000), "2 s");
    }

    #[test]
    fn programs_are_found_in_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-memtrace").is_none());
    }
}
