//! `memtrace serve`: trace continuously and serve the metrics per memory cgroup on `/metrics`
//! for Prometheus to scrape (see docs/exporter.md).
mod http;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use clap::Args;
use memtrace::{
    Error,
    collect::{
        caps::{self, Need},
        cgroups::cgroup_mounts,
        filter::{CgroupTarget, Filter, process_of, resolve_cgroup},
        loader::{FaultEnd, Tracer, TracerConfig},
        session::{self, Callbacks, NoSink, RunOptions, SampleSink},
    },
    metrics::{Metrics, MetricsSettings, Mount},
    model::Tick,
    recording::{RotatingWriter, Rotation},
    report::metrics::SharedMetrics,
    samples::machine::Thresholds,
};

use super::{args, output};

/// Where `serve` listens unless told otherwise: loopback only, on a port outside the range of
/// Prometheus' exporter port allocations (9100-9999, all taken) and Kubernetes' own ports.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10037";

/// Options of `memtrace serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to serve /metrics on; anything beyond loopback must be given here
    /// (e.g. 0.0.0.0:10037 in a DaemonSet).
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Trace only this process (all its threads); repeat for more. Serving stops once they
    /// have all exited.
    #[arg(short, long = "pid", value_name = "PID", conflicts_with = "cgroup")]
    pids: Vec<u32>,
    /// With --pid: also trace the processes the traced ones start from now on.
    #[arg(short = 'f', long, requires = "pids")]
    children: bool,
    /// With --pid: also export each traced process's own series (labels pid and comm); the
    /// --pid list bounds them.
    #[arg(long, requires = "pids", conflicts_with = "children")]
    per_process: bool,
    /// Trace only tasks in this cgroup (a v2 directory or a v1 memory-controller one) or below.
    #[arg(short, long, value_name = "PATH")]
    cgroup: Option<PathBuf>,
    /// How often the metrics are brought up to date.
    #[arg(short, long, default_value = "1s", value_parser = args::duration)]
    interval: Duration,
    /// A removed cgroup's series are dropped this long after its last event.
    #[arg(long, default_value = "10m", value_parser = args::duration)]
    expire: Duration,
    /// Stop after this long; until SIGTERM or Ctrl-C when absent.
    #[arg(short, long, value_parser = args::duration)]
    duration: Option<Duration>,
    /// Also write a recording to FILE, for `memtrace report`. It rotates: see --rotate-every,
    /// --rotate-size and --keep.
    #[arg(short, long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// With -o: end FILE once it covers this long, rename it FILE.1 (older ones move up to
    /// FILE.2, ...), and go on in a new FILE.
    #[arg(long, default_value = "1h", value_parser = args::duration, value_name = "DURATION")]
    rotate_every: Duration,
    /// With -o: also rotate once FILE holds this much (64M, 1G, ...).
    #[arg(long, value_parser = args::size, value_name = "SIZE", requires = "output")]
    rotate_size: Option<u64>,
    /// With -o: how many rotated files to keep beside FILE; older ones are removed.
    #[arg(long, default_value_t = 24, value_name = "N")]
    keep: u32,
    /// Ring-buffer size in MiB (power of two).
    #[arg(long, default_value = "4", value_parser = args::ring_mib)]
    ring_size: u32,
    /// Trace page faults only: no reclaim, compaction, swap or kswapd hooks.
    #[arg(long)]
    faults_only: bool,
}

/// Checks the arguments and privileges, binds the address, loads the tracer, and serves until
/// stopped.
pub fn run(args: ServeArgs) -> Result<ExitCode, Error> {
    let filter = filter_of(&args)?;
    // Capabilities, not uid 0: the DaemonSet runs it with exactly CAP_BPF and CAP_PERFMON.
    caps::check(Need::Trace)?;
    let listener =
        std::net::TcpListener::bind(args.listen).map_err(|e| Error::InvalidArgument {
            what: "listen address",
            value: args.listen.to_string(),
            reason: e.to_string(),
        })?;
    let rotation = Rotation {
        max_bytes: args.rotate_size.unwrap_or(0),
        max_age_ns: args.rotate_every.as_nanos() as u64,
        keep: args.keep,
    };
    let mut writer = args
        .output
        .as_deref()
        .map(|path| RotatingWriter::create(path, rotation))
        .transpose()?;
    let config = TracerConfig {
        filter: filter.clone(),
        ring_bytes: args.ring_size << 20,
        fault_end: FaultEnd::Auto,
        reclaim: !args.faults_only,
        stacks_every: None,
    };
    let (facts, tracer) = output::start_tracer(&config)?;
    let mut options = RunOptions {
        duration: args.duration,
        interval: args.interval,
        watch_pids: filter.pids().to_vec(),
        stacks: false,
        model: false,
        announce: None,
    };
    let header = output::header(&filter, Thresholds::default(), &facts);
    let metrics: SharedMetrics = Arc::new(Mutex::new(Metrics::new(MetricsSettings {
        expire_ns: args.expire.as_nanos() as u64,
        mounts: mounts(),
        per_process: if args.per_process {
            filter.pids().to_vec()
        } else {
            Vec::new()
        },
    })));
    // Said by the session once SIGINT and SIGTERM are handled.
    options.announce = Some(format!(
        "memtrace: tracing page faults of {}; serving http://{}/metrics{}",
        filter.describe(),
        listener
            .local_addr()
            .map_or_else(|_| args.listen.to_string(), |a| a.to_string()),
        writer
            .as_ref()
            .map(|w| format!("; recording to {}", w.path().display()))
            .unwrap_or_default()
    ));
    let sink: &mut dyn SampleSink = match writer.as_mut() {
        Some(writer) => writer,
        None => &mut NoSink,
    };
    let scrapes = serve(tracer, &options, header, sink, listener, &metrics)?;
    errln!("memtrace: stopped after {scrapes} scrapes");
    if let Some(writer) = writer.as_ref() {
        errln!(
            "memtrace: recorded {} intervals to {}{}",
            writer.intervals(),
            writer.path().display(),
            match writer.rotated() {
                0 => String::new(),
                n => format!(
                    " after {n} rotations (the older files are {}.1 ...)",
                    writer.path().display()
                ),
            }
        );
        if let Some(reason) = writer.failure() {
            errln!("memtrace: the recording stopped early: {reason}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the session and the HTTP server on one runtime until the session ends; returns the
/// number of scrapes served.
fn serve(
    tracer: Tracer,
    options: &RunOptions,
    header: memtrace::samples::Header,
    sink: &mut dyn SampleSink,
    listener: std::net::TcpListener,
    metrics: &SharedMetrics,
) -> Result<u64, Error> {
    let runtime = output::runtime()?;
    runtime.block_on(async {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("setting up the listening socket", e))?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::io("setting up the listening socket", e))?;
        let server = http::Server::new(Arc::clone(metrics));
        let scrapes = server.scrapes();
        let task = tokio::spawn(server.run(listener));
        let callbacks = Callbacks {
            on_tick: |tick: Tick<'_>| fold(metrics, &tick),
            on_record: |_: &memtrace::collect::decode::Record| {},
            on_oom: |_: &memtrace::model::oom::OomKill| {},
            on_cgroup_gone: |target: &CgroupTarget| {
                errln!(
                    "memtrace: warning: the traced cgroup {} was removed; nothing in it can be \
                     traced any more",
                    memtrace::report::units::printable(&target.path.display().to_string())
                );
            },
        };
        let result = session::record(tracer, options, header, sink, callbacks).await;
        task.abort();
        result.map(|_| scrapes.load(std::sync::atomic::Ordering::Relaxed))
    })
}

/// Adds one interval to the metrics, and now and then drops what aged out.
fn fold(metrics: &SharedMetrics, tick: &Tick<'_>) {
    let mut metrics = metrics.lock().unwrap_or_else(|p| p.into_inner());
    metrics.apply(tick.sample);
    if metrics.expire_due(tick.sample.end_ns) {
        metrics.expire(tick.sample.end_ns, |dir| Path::new(dir).exists());
    }
}

/// The cgroup hierarchies' mounts, for labels relative to their roots.
fn mounts() -> Vec<Mount> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    cgroup_mounts(&mountinfo)
        .into_iter()
        .map(|m| Mount {
            mount_point: m.mount_point.display().to_string(),
            root: m.root.display().to_string(),
        })
        .collect()
}

/// What to trace: everything, some processes, or a cgroup.
fn filter_of(args: &ServeArgs) -> Result<Filter, Error> {
    if let Some(path) = &args.cgroup {
        return Ok(Filter::Cgroup(resolve_cgroup(path)?));
    }
    if args.pids.is_empty() {
        return Ok(Filter::All);
    }
    let mut pids = Vec::new();
    for &pid in &args.pids {
        let process = process_of(pid)?;
        if !pids.contains(&process) {
            pids.push(process);
        }
    }
    Ok(Filter::Pids {
        pids,
        children: args.children,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, parse};

    fn serve_args(args: &[&str]) -> Result<Cli, clap::Error> {
        parse(["memtrace", "serve"].iter().chain(args))
    }

    #[test]
    fn the_default_address_is_loopback() {
        let cli = serve_args(&[]).expect("parses");
        let text = format!("{cli:?}");
        assert!(text.contains("listen: 127.0.0.1:10037"), "{text}");
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for args in [
            &["--listen", "localhost"][..],
            &["--listen", "127.0.0.1:99999"],
            &["--per-process"],
            &["--pid", "1", "--children", "--per-process"],
            &["--expire", "soon"],
            &["--rotate-size", "64M"],
            &["-o", "x.mtr", "--rotate-size", "1.5G"],
            &["-o", "x.mtr", "--rotate-every", "0"],
            &["-o", "x.mtr", "--keep", "-1"],
        ] {
            let error = serve_args(args).expect_err("a usage error");
            assert!(error.use_stderr(), "{args:?}");
        }
        assert!(serve_args(&["--pid", "1", "--per-process"]).is_ok());
        assert!(serve_args(&["-o", "x.mtr", "--rotate-size", "64M", "--keep", "0"]).is_ok());
    }
}
