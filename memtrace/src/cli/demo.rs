//! `memtrace demo`: builds a sandbox (memory cgroup + temporary zram swap), runs a workload
//! with known fault counts in it (and/or a hog that outgrows a memcg without swap, to an OOM
//! kill), traces it, prints the report beside the kernel's own counters, removes the sandbox.
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    time::Duration,
};

use clap::Args;
use memtrace::{
    Error,
    collect::{
        caps::Need,
        filter::Filter,
        kernel::KernelFacts,
        loader::{Tracer, TracerConfig},
        session::{RunOptions, SampleSink},
    },
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::scenario::{LeakScenario, OomScenario, release},
    lab::workload::{faults::FaultOutcome, vmstat},
    model::Model,
    recording::Writer,
    report::{Report, View, oom as oom_block},
    samples::machine::Thresholds,
};
use memtrace_common::FaultClass;

use super::output;

const MIB: u64 = 1 << 20;
/// The OOM scenario's memcg limit (no swap): the hog grows to four times as much.
const OOM_LIMIT_MIB: u64 = 48;
/// The leak scenario: a leak of this rate in a memcg of this limit without swap, traced for
/// this long (it reaches the limit about six seconds later).
const LEAK_LIMIT_MIB: u64 = 256;
const LEAK_KIB_PER_S: u64 = 12 << 10;
const LEAK_TRACED: Duration = Duration::from_secs(14);

/// Options of `memtrace demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Memory limit of the sandbox's cgroup, in MiB.
    #[arg(long, default_value_t = 64)]
    limit_mib: u64,
    /// MiB of anonymous memory written and read back: more than the limit means swap-ins.
    #[arg(long, default_value_t = 160)]
    swap_mib: usize,
    /// MiB of file read through a mapping with a cold page cache (major faults).
    #[arg(long, default_value_t = 32)]
    file_mib: usize,
    /// MiB of fresh anonymous memory touched once (minor faults).
    #[arg(long, default_value_t = 64)]
    anon_mib: usize,
    /// Write the report as JSON to FILE (`-` for stdout); with `--scenario all` the OOM
    /// scenario's report goes to FILE.oom.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also keep a recording of the run in FILE (`memtrace report FILE` replays it); with
    /// `--scenario all` the OOM scenario's goes to FILE.oom.
    #[arg(short, long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// No live line per interval.
    #[arg(short, long)]
    quiet: bool,
    /// The leak scenario's flame graph of the pages its faults brought in (SVG).
    #[arg(long, value_name = "FILE")]
    flamegraph: Option<PathBuf>,
    /// Which scenario to run: fault latency, an OOM kill in a memcg, a leak caught before its
    /// memcg's limit, or all three.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
}

/// `--scenario` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Faults,
    Oom,
    Leak,
    All,
}

impl Scenario {
    fn runs(self, scenario: Scenario) -> bool {
        self == Scenario::All || self == scenario
    }
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<ExitCode, Error> {
    super::start_as_root(Need::Sandbox)?;
    if let Some(path) = &args.flamegraph {
        output::check_json_path(Some(path))?;
    }
    let facts = KernelFacts::from_running_kernel()?;
    if args.scenario.runs(Scenario::Faults) {
        run_faults(&args, &facts)?;
    }
    if args.scenario.runs(Scenario::Oom) {
        run_oom(&args, &facts)?;
    }
    if args.scenario.runs(Scenario::Leak) {
        run_leak(&args, &facts)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The fault scenario: minor, file and swap-in faults beside the kernel's counts.
fn run_faults(args: &DemoArgs, facts: &KernelFacts) -> Result<(), Error> {
    let swap_bytes = (args.swap_mib as u64 * MIB).max(256 * MIB) * 2;
    let limits = MemcgLimits {
        memory_bytes: args.limit_mib * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(swap_bytes))?;
    errln!(
        "memtrace demo: sandbox {} ({} MiB limit) with {} MiB of temporary swap",
        sandbox.memcg.path().display(),
        args.limit_mib,
        swap_bytes / MIB
    );
    let mut child = spawn_workload(args)?;
    let result = trace_workload(args, facts, &sandbox, &mut child);
    // Whatever happened, the workload must not outlive the demo; the sandbox goes with `sandbox`.
    let _ = child.kill();
    let _ = child.wait();
    drop(sandbox);
    errln!("memtrace demo: sandbox removed");
    result
}

fn trace_workload(
    args: &DemoArgs,
    facts: &KernelFacts,
    sandbox: &Sandbox,
    child: &mut Child,
) -> Result<(), Error> {
    let pid = child.id();
    sandbox.memcg.add_pid(pid)?;
    let (tracer, filter) = start_tracer(facts, pid, None)?;
    errln!(
        "memtrace demo: tracing pid {pid}: {} MiB file read cold, {} MiB touched once, {} MiB \
         written and read back in {} MiB",
        args.file_mib,
        args.anon_mib,
        args.swap_mib,
        args.limit_mib
    );
    let pswpin_before = vmstat("pswpin").map_err(|e| Error::io("reading /proc/vmstat", e))?;
    release(child)?;
    let run = Run {
        filter: &filter,
        facts,
        quiet: args.quiet,
        interval: Duration::from_millis(250),
        output: args.output.as_deref(),
        duration: Duration::from_secs(120),
        stacks: false,
    };
    let model = run.record(tracer, pid)?;
    let pswpin =
        vmstat("pswpin").map_err(|e| Error::io("reading /proc/vmstat", e))? - pswpin_before;
    let outcome = read_outcome(child)?;
    let report = final_report(&model, args.json.as_deref(), None)?;
    print_comparison(&report, &outcome, pswpin);
    Ok(())
}

/// One traced run of the demo.
struct Run<'a> {
    filter: &'a Filter,
    facts: &'a KernelFacts,
    quiet: bool,
    interval: Duration,
    /// Keep a recording here.
    output: Option<&'a Path>,
    /// At most this long.
    duration: Duration,
    /// Read the fault stacks.
    stacks: bool,
}

impl Run<'_> {
    /// Records until the process exits (or `duration`), with the live views.
    fn record(&self, tracer: Tracer, pid: u32) -> Result<Model, Error> {
        let options = RunOptions {
            duration: Some(self.duration),
            interval: self.interval,
            watch_pids: vec![pid],
            stacks: self.stacks,
            model: true,
            announce: None,
        };
        let header = output::header(self.filter, Thresholds::default(), self.facts);
        let views = output::LiveViews {
            quiet: self.quiet,
            min_stall_ns: None,
            log_to_stderr: false,
        };
        let mut writer = self.output.map(Writer::create).transpose()?;
        let sink: &mut dyn SampleSink = match writer.as_mut() {
            Some(writer) => writer,
            None => &mut memtrace::collect::session::NoSink,
        };
        let model = output::run_session(tracer, &options, header, sink, &views)?;
        if let Some(writer) = &writer {
            errln!(
                "memtrace demo: recorded {} intervals to {}",
                writer.intervals(),
                writer.path().display()
            );
        }
        Ok(model)
    }
}

/// The report of a demo run, on stdout (and as JSON to `json`, the flame graph to
/// `flamegraph`).
fn final_report(
    model: &Model,
    json: Option<&Path>,
    flamegraph: Option<&Path>,
) -> Result<Report, Error> {
    let options = output::ReportOptions {
        view: View::default(),
        top: 10,
        json,
        html: None,
        folded: None,
        flamegraph,
    };
    output::final_report(model, &options)
}

/// Attaches the tracer to one process (OOM kills are traced machine-wide anyway), with the
/// fault stacks when `stacks_every` says.
fn start_tracer(
    facts: &KernelFacts,
    pid: u32,
    stacks_every: Option<u32>,
) -> Result<(Tracer, Filter), Error> {
    let filter = Filter::Pids {
        pids: vec![pid],
        children: false,
    };
    let config = TracerConfig {
        filter: filter.clone(),
        stacks_every,
        ..TracerConfig::default()
    };
    Ok((Tracer::start(&config, facts)?, filter))
}

/// The OOM scenario: a hog outgrows a memcg without swap; the kill's report beside the kernel's
/// own OOM counters.
fn run_oom(args: &DemoArgs, facts: &KernelFacts) -> Result<(), Error> {
    let mut scenario = OomScenario::start(OOM_LIMIT_MIB)?;
    let (memcg, pid) = (scenario.workload.memcg(), scenario.workload.pid());
    errln!(
        "memtrace demo: sandbox {} ({OOM_LIMIT_MIB} MiB, no swap): a hog grows to {} MiB in it",
        memcg.display(),
        OOM_LIMIT_MIB * 4
    );
    let (tracer, filter) = start_tracer(facts, pid, None)?;
    scenario.workload.release()?;
    let files = ScenarioFiles::of(args, "oom");
    let run = Run {
        filter: &filter,
        facts,
        quiet: args.quiet,
        interval: Duration::from_secs(1),
        output: files.output.as_deref(),
        duration: Duration::from_secs(120),
        stacks: false,
    };
    let model = run.record(tracer, pid)?;
    let counts = scenario.kernel_counts()?;
    drop(scenario);
    errln!("memtrace demo: sandbox removed");
    let report = final_report(&model, files.json.as_deref(), None)?;
    super::stdio::report_stdout()
        .and_then(|mut out| oom_block::write_comparison(&report.oom_kills, &counts, &mut out))
        .map_err(|e| Error::io("the comparison is lost: stdout", e))
}

/// Where a scenario's recording and JSON report go.
struct ScenarioFiles {
    output: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl ScenarioFiles {
    /// FILE.`suffix` when several scenarios write (the fault scenario keeps FILE), else FILE;
    /// a JSON report to stdout (`-`) stays there.
    fn of(args: &DemoArgs, suffix: &str) -> Self {
        let several = args.scenario == Scenario::All;
        let path = |p: &Path| {
            if several && p != Path::new("-") {
                PathBuf::from(format!("{}.{suffix}", p.display()))
            } else {
                p.to_path_buf()
            }
        };
        Self {
            output: args.output.as_deref().map(path),
            json: args.json.as_deref().map(path),
        }
    }
}

/// The leak scenario: a steady leak in a memcg without swap, traced with its fault stacks for
/// fourteen seconds; the report gives its slope and the time left under the limit, then the demo
/// waits for the OOM kill and says how the forecast did.
fn run_leak(args: &DemoArgs, facts: &KernelFacts) -> Result<(), Error> {
    let mut scenario = LeakScenario::start(LEAK_LIMIT_MIB, LEAK_KIB_PER_S)?;
    let (memcg, pid) = (scenario.workload.memcg(), scenario.workload.pid());
    errln!(
        "memtrace demo: sandbox {} ({LEAK_LIMIT_MIB} MiB, no swap): a leak of {} MiB/s in it, \
         traced with its stacks for {} s",
        memcg.display(),
        LEAK_KIB_PER_S >> 10,
        LEAK_TRACED.as_secs()
    );
    let (tracer, filter) = start_tracer(facts, pid, Some(1))?;
    scenario.workload.release()?;
    let files = ScenarioFiles::of(args, "leak");
    let run = Run {
        filter: &filter,
        facts,
        quiet: args.quiet,
        interval: Duration::from_secs(1),
        output: files.output.as_deref(),
        duration: LEAK_TRACED,
        stacks: true,
    };
    let model = run.record(tracer, pid)?;
    let traced_until = std::time::Instant::now();
    let report = final_report(&model, files.json.as_deref(), args.flamegraph.as_deref())?;
    let forecast = report
        .growth
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .and_then(|p| p.forecast.clone());
    let killed = scenario.wait_killed(Duration::from_secs(120))?;
    let after_s = killed.map(|at| at.duration_since(traced_until).as_secs_f64());
    drop(scenario);
    errln!("memtrace demo: sandbox removed");
    match (forecast, after_s) {
        (Some(f), Some(after)) => outln!(
            "\nmemtrace's forecast at its last reading: the {} limit in {:.1} s; the kernel's OOM \
             killer ended the leak {:.1} s after tracing stopped",
            f.limit,
            f.seconds,
            after
        ),
        (None, _) => outln!("\nmemtrace made no forecast for the leak"),
        (Some(_), None) => outln!("\nthe leak was not killed within two minutes"),
    }
    Ok(())
}

fn spawn_workload(args: &DemoArgs) -> Result<Child, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating the memtrace binary", e))?;
    Command::new(exe)
        .args(["workload", "--wait", "faults"])
        .args(["--file-mib", &args.file_mib.to_string()])
        .args(["--anon-mib", &args.anon_mib.to_string()])
        .args(["--swap-mib", &args.swap_mib.to_string()])
        // A quiet second first, so the timeline shows the storm starting.
        .args(["--pause-ms", "1000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting the demo workload", e))
}

fn read_outcome(child: &mut Child) -> Result<FaultOutcome, Error> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::io("workload stdout", std::io::ErrorKind::BrokenPipe.into()))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the workload's counters", e))?;
    serde_json::from_str(&line)
        .map_err(|e| Error::io(format!("workload output {line:?}"), e.into()))
}

/// memtrace's counts beside the kernel's own, so the reader can check them.
fn print_comparison(report: &Report, outcome: &FaultOutcome, pswpin: u64) {
    let process = report.processes.iter().find(|p| p.pid == outcome.pid);
    let count = |class: FaultClass| {
        process
            .and_then(|p| p.classes.iter().into_iter().find(|(c, _)| *c == class))
            .map_or(0, |(_, stats)| stats.latency.count)
    };
    // The kernel's minflt also counts huge page faults and the faults it took without an
    // exception (untimed).
    let untimed = process.map_or(0, |p| p.untimed_faults);
    let minor = count(FaultClass::Minor) + count(FaultClass::Thp) + untimed;
    let major = count(FaultClass::MajorFile) + count(FaultClass::MajorSwap);
    outln!(
        "\nmemtrace against the kernel's own counters for pid {}:",
        outcome.pid
    );
    outln!("  {:<24} {:>10} {:>10}", "", "memtrace", "kernel");
    outln!(
        "  {:<24} {:>10} {:>10}  (/proc/PID/stat minflt)",
        "minor faults",
        minor,
        outcome.total.minflt
    );
    outln!(
        "  {:<24} {:>10} {:>10}  (/proc/PID/stat majflt)",
        "major faults",
        major,
        outcome.total.majflt
    );
    outln!(
        "  {:<24} {:>10} {:>10}  (/proc/vmstat pswpin)",
        "swap-ins",
        count(FaultClass::MajorSwap),
        pswpin
    );
}
