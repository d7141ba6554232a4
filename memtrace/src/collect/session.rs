//! One recording: drains the ring buffers when the kernel wakes us (a batch is waiting) and on
//! every interval tick, closes one sample per interval, hands it to the sink (a recording file)
//! and folds it into the model, until the duration ends, the user interrupts, or every watched
//! process has exited.
use std::{
    os::fd::{FromRawFd, OwnedFd},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aya::maps::{MapData, RingBuf};
use tokio::{io::Interest, io::unix::AsyncFd, signal::unix::SignalKind, sync::mpsc};

use super::{
    cgroups::{cgroup_path_of, memory_limit_bytes},
    decode::{Record, decode},
    fault_stacks::StackReader,
    files::FileNames,
    filter::{CgroupTarget, Filter},
    growth::MemoryWatch,
    interval::IntervalBuilder,
    kswapd::NodeThreads,
    loader::Tracer,
    machine,
    oom::OomCollector,
    zones,
};
use crate::{
    error::Error,
    model::{Model, Tick, oom::OomKill},
    samples::{CgroupName, End, Header, IntervalSample, KernelCounters, StopReason},
};

/// Intervals between two returns of freed heap memory to the kernel.
const TRIM_EVERY: u64 = 60;

/// How long to record and how often to report.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Stop after this long; `None` runs until interrupted.
    pub duration: Option<Duration>,
    /// Length of one interval.
    pub interval: Duration,
    /// Stop once all of these processes have exited (empty: never).
    pub watch_pids: Vec<u32>,
    /// Read the fault stacks each interval (`record --stacks`).
    pub stacks: bool,
    /// A line for stderr once the signals are handled (memtrace's "tracing" line): whoever
    /// waits for it may interrupt at once.
    pub announce: Option<String>,
    /// Build the model of the whole run (its report). `serve` keeps its own metrics and runs
    /// for weeks, so it does without: the model's timeline and process table would be memory
    /// nobody reads.
    pub model: bool,
}

/// Where the samples go besides the model: a recording file, or nowhere.
pub trait SampleSink {
    /// The header, before the first interval.
    fn header(&mut self, header: &Header);
    /// One closed interval.
    fn interval(&mut self, sample: &IntervalSample);
    /// The end of the recording.
    fn end(&mut self, end: &End);
}

/// A sink that keeps nothing.
pub struct NoSink;

impl SampleSink for NoSink {
    fn header(&mut self, _: &Header) {}
    fn interval(&mut self, _: &IntervalSample) {}
    fn end(&mut self, _: &End) {}
}

/// What the session calls back while it runs.
pub struct Callbacks<T, R, O, G> {
    /// Once per interval.
    pub on_tick: T,
    /// For every decoded record as it is drained (the per-event log).
    pub on_record: R,
    /// For every OOM kill, once its victim exited or a second passed.
    pub on_oom: O,
    /// Once, at the first tick after the traced cgroup was removed: it can hold no more tasks.
    pub on_cgroup_gone: G,
}

/// Runs a recording with an attached tracer. `header` carries what the caller knows (what is
/// traced, thresholds, host facts); the session adds the clocks and the machine at the start.
/// Returns the model of the whole recording.
pub async fn record(
    mut tracer: Tracer,
    options: &RunOptions,
    mut header: Header,
    sink: &mut dyn SampleSink,
    mut callbacks: Callbacks<
        impl FnMut(Tick<'_>),
        impl FnMut(&Record),
        impl FnMut(&OomKill),
        impl FnMut(&CgroupTarget),
    >,
) -> Result<Model, Error> {
    let ring = tracer.take_ring()?;
    // SAFETY: the ring buffer owns its fd, which stays open and unchanged while AsyncFd owns it.
    let mut ring =
        unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|e| {
            Error::io(
                "registering the ring buffer with the event loop",
                e.into_parts().1,
            )
        })?;
    // OOM records have their own ring, so that they never wait behind a batch of faults.
    let oom_ring = tracer.take_oom_ring()?;
    // SAFETY: as above, for the OOM ring buffer's fd.
    let mut oom_ring = unsafe { AsyncFd::register_with_interest(oom_ring, Interest::READABLE) }
        .map_err(|e| Error::io("registering the OOM ring buffer", e.into_parts().1))?;
    let mut exited = watch_exits(&options.watch_pids)?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    if let Some(line) = &options.announce {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    // Slow to read, and only for the report: read with the programs already tracing.
    if header.host.memory.pageblock_order.is_none() {
        header.host.memory.pageblock_order = super::host::pageblock_order();
    }
    let first = machine::sample();
    header.start_mono_ns = first.mono_ns;
    header.start_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    header.interval_ns = options.interval.as_nanos() as u64;
    header.machine = first;
    header.hooks.clone_from(&tracer.hooks);
    sink.header(&header);
    let mut oom = OomCollector::new(tracer.filter.clone(), first.mono_ns);
    let mut builder = IntervalBuilder::new(first.mono_ns);
    let mut readers = Readers {
        daemons: Daemons::find(),
        memory: MemoryWatch::new(page_kb()),
        file_names: FileNames::default(),
        stacks: options.stacks.then(StackReader::default),
    };
    readers.daemons.read(&mut builder);
    builder.zone_reading(&zones::read());
    builder.allocator_counts(&tracer.allocator_counts()?);
    let mut zone_ticker = tokio::time::interval(zones::READ_EVERY);
    zone_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut model = Model::new(header);
    let mut last_counters = KernelCounters::default();

    let start = Instant::now();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    let mut last_tick = Instant::now();
    let mut remaining = options.watch_pids.len();
    let mut watched_cgroup = match &tracer.filter {
        Filter::Cgroup(target) => Some(target.clone()),
        _ => None,
    };

    let stop = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(|e| Error::io("waiting on the ring buffer", e))?;
                drain(guard.get_inner_mut(), &mut builder, &mut callbacks.on_record);
                guard.clear_ready();
            }
            guard = oom_ring.readable_mut() => {
                let mut guard = guard.map_err(|e| Error::io("waiting on the OOM ring buffer", e))?;
                oom.drain(guard.get_inner_mut(), &mut tracer, &mut builder);
                guard.clear_ready();
                oom.show_ready(&mut callbacks.on_oom, false);
            }
            _ = zone_ticker.tick() => builder.zone_reading(&zones::read()),
            _ = ticker.tick() => {
                drain(ring.get_mut(), &mut builder, &mut callbacks.on_record);
                oom.drain(oom_ring.get_mut(), &mut tracer, &mut builder);
                oom.poll_kmsg(&mut builder);
                oom.show_ready(&mut callbacks.on_oom, false);
                let (sample, counters) = close_interval(
                    &mut tracer, &mut builder, &mut readers, sink, options, &mut model,
                )?;
                if sample.index % TRIM_EVERY == TRIM_EVERY - 1 {
                    // glibc keeps freed memory; a burst's must go back for a run of days.
                    // SAFETY: malloc_trim only releases free memory.
                    unsafe { libc::malloc_trim(0) };
                }
                let now = Instant::now();
                (callbacks.on_tick)(Tick {
                    elapsed: now - start,
                    interval: now - last_tick,
                    sample: &sample,
                    lost_faults: lost_faults(&counters) - lost_faults(&last_counters),
                    model: &model,
                });
                last_counters = counters;
                last_tick = now;
                if let Some(gone) = watched_cgroup.take_if(|target| target.is_gone()) {
                    (callbacks.on_cgroup_gone)(&gone);
                }
            }
            _ = sleep_until(deadline) => break StopReason::Duration,
            _ = sigint.recv() => break StopReason::Interrupted,
            _ = sigterm.recv() => break StopReason::Interrupted,
            _ = sighup.recv() => break StopReason::Interrupted,
            Some(_) = exited.recv(), if remaining > 0 => {
                remaining -= 1;
                if remaining == 0 {
                    break StopReason::TracedExited;
                }
            }
        }
    };
    // Everything the kernel produced up to now is in the ring: take it all, and close the last
    // (partial) interval so the timeline covers the whole recording.
    drain(ring.get_mut(), &mut builder, &mut callbacks.on_record);
    // Minor faults still in per-CPU batches: stop the fault hooks, take what they sent last,
    // then what they never sent.
    let leftovers = tracer.stop_faults()?;
    drain(ring.get_mut(), &mut builder, &mut callbacks.on_record);
    for batch in &leftovers {
        builder.add_minor_batch(batch);
    }
    oom.drain(oom_ring.get_mut(), &mut tracer, &mut builder);
    oom.poll_kmsg(&mut builder);
    oom.show_ready(&mut callbacks.on_oom, true);
    let (_, counters) = close_interval(
        &mut tracer,
        &mut builder,
        &mut readers,
        sink,
        options,
        &mut model,
    )?;
    let end = End {
        stop,
        elapsed_ns: start.elapsed().as_nanos() as u64,
        counters,
    };
    sink.end(&end);
    model.finish(&end);
    Ok(model)
}

/// What is read from the machine at each close besides the builder's records.
struct Readers {
    daemons: Daemons,
    memory: MemoryWatch,
    file_names: FileNames,
    /// `--stacks`.
    stacks: Option<StackReader>,
}

/// kswapd's and kcompactd's threads, whose CPU time each interval gets.
struct Daemons {
    kswapd: NodeThreads,
    kcompactd: NodeThreads,
}

impl Daemons {
    fn find() -> Self {
        Self {
            kswapd: NodeThreads::kswapd(),
            kcompactd: NodeThreads::kcompactd(),
        }
    }

    /// Hands their CPU time so far to the builder (read at the start and before each close).
    fn read(&self, builder: &mut IntervalBuilder) {
        builder.kswapd_cpu(&self.kswapd.read());
        builder.kcompactd_cpu(self.kcompactd.total_ns());
    }
}

/// Closes the interval with the kernel's counters, kswapd's and kcompactd's CPU time, the
/// zones' readings and the traced processes' memory, and hands it to the sink and (unless
/// `serve`) the model.
fn close_interval(
    tracer: &mut Tracer,
    builder: &mut IntervalBuilder,
    readers: &mut Readers,
    sink: &mut dyn SampleSink,
    options: &RunOptions,
    model: &mut Model,
) -> Result<(IntervalSample, KernelCounters), Error> {
    let counters = tracer.counters()?;
    builder.allocator_counts(&tracer.allocator_counts()?);
    readers.daemons.read(builder);
    builder.zone_reading(&zones::read());
    let mut sample = builder.close(machine::sample(), counters, name_cgroup);
    readers.file_names.name(&mut sample.files);
    // Without the iterator (a kernel whose BTF lacks what it reads) no memory is read.
    if let Ok(bytes) = tracer.process_memory() {
        sample.memory = readers.memory.reading(&bytes, sample.end_ns);
    }
    if let Some(stacks) = readers.stacks.as_mut() {
        sample.stacks = stacks.read(tracer);
    }
    sink.interval(&sample);
    if options.model {
        model.apply(&sample);
    }
    Ok((sample, counters))
}

/// The path and memory limit of a memory cgroup, as the recording keeps them.
fn name_cgroup(id: u64) -> CgroupName {
    let path = cgroup_path_of(id);
    CgroupName {
        id,
        memory_limit_bytes: path.as_deref().and_then(memory_limit_bytes),
        path: path.map(|p| p.display().to_string()),
    }
}

/// The page size in KiB.
fn page_kb() -> u64 {
    // SAFETY: plain libc call.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).map_or(4, |bytes| bytes / 1024)
}

/// Faults lost so far (a lost minor-fault batch counts each of its faults).
fn lost_faults(counters: &KernelCounters) -> u64 {
    counters.lost[memtrace_common::EventKind::Fault as usize]
}

fn signal(kind: SignalKind) -> Result<tokio::signal::unix::Signal, Error> {
    tokio::signal::unix::signal(kind).map_err(|e| Error::io("installing a signal handler", e))
}

/// Decodes every record waiting in the ring into the interval.
fn drain(
    ring: &mut RingBuf<MapData>,
    builder: &mut IntervalBuilder,
    on_record: &mut impl FnMut(&Record),
) {
    while let Some(item) = ring.next() {
        let record = decode(&item);
        if let Ok(record) = &record {
            on_record(record);
        }
        builder.add(record);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Signals once per watched process when it exits, through pidfds (no polling).
fn watch_exits(pids: &[u32]) -> Result<mpsc::UnboundedReceiver<u32>, Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    for &pid in pids {
        let fd = pidfd_open(pid)?;
        // SAFETY: the OwnedFd stays open and unchanged while AsyncFd owns it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| Error::io(format!("watching pid {pid}"), e.into_parts().1))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = fd.readable().await;
            let _ = tx.send(pid);
        });
    }
    Ok(rx)
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, Error> {
    // SAFETY: plain syscall; a non-negative result is a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Err(Error::NoSuchProcess { pid });
        }
        return Err(Error::io(format!("pidfd_open({pid})"), err));
    }
    // SAFETY: the kernel just handed us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
