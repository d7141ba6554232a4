//! `memtrace workload` (hidden): runs a built-in workload and prints the kernel's counters for
//! it as one JSON line.
use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use memtrace::{
    Error,
    lab::workload::{
        self,
        faults::FaultPlan,
        oom::{HogPlan, PairPlan},
    },
};

/// Options of `memtrace workload`.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    #[command(subcommand)]
    kind: Kind,
    /// Wait for a line on stdin before starting (so a tracer can attach first).
    #[arg(long, global = true)]
    wait: bool,
}

#[derive(Debug, Subcommand)]
enum Kind {
    /// File major faults, anonymous minor faults, and swap-ins.
    Faults {
        #[arg(long, default_value_t = 32)]
        file_mib: usize,
        #[arg(long, default_value_t = 64)]
        anon_mib: usize,
        #[arg(long, default_value_t = 0)]
        swap_mib: usize,
        /// Directory for the temporary file (not tmpfs).
        #[arg(long, default_value = "/var/tmp")]
        dir: PathBuf,
        /// Stay idle this long first (a quiet stretch before the storm, for timelines).
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Transparent huge page faults (`--thp-mib`) and a sequential read of a cold file through
    /// a mapping (`--seq-mib`): one JSON line with the kernel's counters for each.
    Pages {
        #[arg(long, default_value_t = 0)]
        thp_mib: usize,
        #[arg(long, default_value_t = 0)]
        seq_mib: usize,
        /// Directory for the temporary file (not tmpfs).
        #[arg(long, default_value = "/var/tmp")]
        dir: PathBuf,
        /// Threads that spin beside the work meanwhile, so that it competes for the CPUs.
        #[arg(long, default_value_t = 0)]
        busy_threads: usize,
        /// Move the reading thread to the next CPU whenever it sleeps during the read.
        #[arg(long)]
        hop_cpus: bool,
    },
    /// Leaves `--mib` of memory fragmented (the pages with an odd physical frame number freed,
    /// so that none can merge), prints "ready", and holds it until a line arrives on stdin.
    Fragment {
        #[arg(long)]
        mib: usize,
    },
    /// Major faults on files of known sizes (`--mib`, repeated: one file each), read one byte a
    /// page after their page cache is dropped; the mappings are held `--hold-ms` at the end.
    Files {
        #[arg(long = "mib", required = true)]
        mibs: Vec<usize>,
        /// Directory for the files (not tmpfs).
        #[arg(long, default_value = "/var/tmp")]
        dir: PathBuf,
        #[arg(long, default_value_t = 1500)]
        hold_ms: u64,
    },
    /// A leak of `--kib-per-s` (anonymous memory taken and never freed, or freed whenever it
    /// reaches `--sawtooth-kib`), for `--seconds` or until killed; prints what it did as JSON.
    Leak {
        #[arg(long)]
        kib_per_s: u64,
        #[arg(long)]
        seconds: Option<f64>,
        #[arg(long, default_value_t = 0)]
        sawtooth_kib: u64,
    },
    /// The workloads of `memtrace bench`.
    #[command(subcommand)]
    Bench(super::bench::BenchWorkload),
    /// Allocates and touches memory in steps until killed (or holds `--mib` until killed).
    /// Makes the kernel reuse a pid: a process faults `--first-pages`, exits, and children are
    /// forked until one gets its pid and faults `--second-pages`.
    PidReuse {
        #[arg(long, default_value_t = 4000)]
        first_pages: usize,
        #[arg(long, default_value_t = 9000)]
        second_pages: usize,
    },
    OomHog {
        #[arg(long)]
        mib: usize,
        #[arg(long, default_value_t = 16)]
        step_mib: usize,
        #[arg(long, allow_negative_numbers = true)]
        oom_score_adj: Option<i32>,
    },
    /// Two hogs in the caller's memcg: A holds `--victim-mib` with oom_score_adj 1000 and
    /// pauses, B grows towards `--grower-mib` until the OOM killer picks A.
    OomPair {
        #[arg(long, default_value_t = 20)]
        victim_mib: usize,
        #[arg(long, default_value_t = 40)]
        grower_mib: usize,
        #[arg(long, default_value_t = 4)]
        step_mib: usize,
    },
}

/// Runs the workload.
pub fn run(args: WorkloadArgs) -> Result<ExitCode, Error> {
    die_with_parent();
    workload::set_comm("mt-workload");
    if args.wait {
        workload::wait_for_go();
    }
    match args.kind {
        Kind::Bench(workload) => return super::bench::run_workload(workload),
        Kind::Faults {
            file_mib,
            anon_mib,
            swap_mib,
            dir,
            pause_ms,
        } => {
            let plan = FaultPlan {
                file_mib,
                anon_mib,
                swap_mib,
                dir,
                pause_ms,
            };
            let outcome =
                workload::faults::run(&plan).map_err(|e| Error::io("fault workload", e))?;
            let line = serde_json::to_string(&outcome)
                .map_err(|e| Error::io("encoding the outcome", e.into()))?;
            outln!("{line}");
        }
        Kind::Pages {
            thp_mib,
            seq_mib,
            dir,
            busy_threads,
            hop_cpus,
        } => {
            let io = |e| Error::io("pages workload", e);
            let busy = workload::pages::Busy::start(busy_threads);
            let thp = (thp_mib > 0)
                .then(|| workload::pages::thp(thp_mib))
                .transpose()
                .map_err(io)?;
            let sequential = (seq_mib > 0)
                .then(|| workload::pages::sequential(&dir, seq_mib, hop_cpus))
                .transpose()
                .map_err(io)?;
            drop(busy);
            let line = serde_json::json!({ "thp": thp, "sequential": sequential });
            outln!("{line}");
        }
        Kind::Files { mibs, dir, hold_ms } => {
            let reads =
                workload::files::run(&dir, &mibs, std::time::Duration::from_millis(hold_ms))
                    .map_err(|e| Error::io("files workload", e))?;
            let line = serde_json::to_string(&reads)
                .map_err(|e| Error::io("encoding the outcome", e.into()))?;
            outln!("{line}");
        }
        Kind::Leak {
            kib_per_s,
            seconds,
            sawtooth_kib,
        } => {
            let plan = workload::leak::LeakPlan {
                kib_per_s,
                seconds,
                sawtooth_kib,
            };
            let outcome = workload::leak::run(&plan).map_err(|e| Error::io("leak workload", e))?;
            let line = serde_json::to_string(&outcome)
                .map_err(|e| Error::io("encoding the outcome", e.into()))?;
            outln!("{line}");
        }
        Kind::Fragment { mib } => {
            let held =
                workload::pages::fragment(mib).map_err(|e| Error::io("fragment workload", e))?;
            outln!("ready");
            workload::wait_for_go();
            drop(held);
        }
        Kind::PidReuse {
            first_pages,
            second_pages,
        } => {
            let outcome = workload::reuse::run(first_pages, second_pages)
                .map_err(|e| Error::io("pid reuse workload", e))?;
            let line = serde_json::to_string(&outcome)
                .map_err(|e| Error::io("encoding the outcome", e.into()))?;
            outln!("{line}");
        }
        Kind::OomHog {
            mib,
            step_mib,
            oom_score_adj,
        } => {
            let plan = HogPlan {
                mib,
                step_mib,
                oom_score_adj,
            };
            workload::oom::run(&plan, &mut std::io::stdout().lock())
                .map_err(|e| Error::io("OOM hog workload", e))?;
        }
        Kind::OomPair {
            victim_mib,
            grower_mib,
            step_mib,
        } => {
            let plan = PairPlan {
                victim_mib,
                grower_mib,
                step_mib,
            };
            let outcome =
                workload::oom::run_pair(&plan).map_err(|e| Error::io("OOM pair workload", e))?;
            let line = serde_json::to_string(&outcome)
                .map_err(|e| Error::io("encoding the outcome", e.into()))?;
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A workload lives only as long as the memtrace (or test) that started it: when that dies,
/// even by SIGKILL, the kernel kills the workload too, rather than let it run its plan into a
/// closed pipe and stay in a sandbox no one will remove until the next run.
fn die_with_parent() {
    // SAFETY: getppid has no failure mode.
    let parent = unsafe { libc::getppid() };
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and affects only this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // The parent may have died before the prctl: it would have reparented us already.
    // SAFETY: as above.
    if unsafe { libc::getppid() } != parent {
        std::process::exit(1);
    }
}
