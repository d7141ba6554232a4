//! One recording: drains the ring buffer into the model when the kernel wakes us (a batch is
//! waiting) and on every interval tick, until the duration ends, the user interrupts, or every
//! watched process has exited.
use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tokio::{io::Interest, io::unix::AsyncFd, signal::unix::SignalKind, sync::mpsc};

use super::{
    loader::{HookStatus, KernelCounters, Tracer},
    machine,
};
use crate::{
    decode::{Record, decode},
    error::Error,
    model::{IntervalCounts, Model, machine::MachineInterval},
    oom::{self, OomCollector, OomKill},
};

/// How long to record and how often to report.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Stop after this long; `None` runs until interrupted.
    pub duration: Option<Duration>,
    /// Length of one interval of the live view.
    pub interval: Duration,
    /// Stop once all of these processes have exited (empty: never).
    pub watch_pids: Vec<u32>,
}

/// Why a recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Every traced process exited.
    TracedExited,
}

/// What one interval tick shows.
pub struct Tick<'a> {
    /// Time since the start of the recording.
    pub elapsed: Duration,
    /// Length of this interval.
    pub interval: Duration,
    /// Counts of this interval.
    pub counts: IntervalCounts,
    /// Kernel counters so far (lost records included).
    pub counters: KernelCounters,
    /// The machine during this interval.
    pub machine: MachineInterval,
    /// The whole model so far.
    pub model: &'a Model,
}

/// A finished recording.
pub struct Recording {
    /// Everything aggregated.
    pub model: Model,
    /// Kernel counters at the end.
    pub counters: KernelCounters,
    /// Which hooks were attached.
    pub hooks: Vec<HookStatus>,
    /// Wall time recorded.
    pub elapsed: Duration,
    /// Why it ended.
    pub stop: StopReason,
}

/// Runs a recording with an attached tracer. `on_tick` is called once per interval, and
/// `on_record` for every decoded record as it is drained (the per-event log).
pub async fn record(
    mut tracer: Tracer,
    options: &RunOptions,
    mut on_tick: impl FnMut(Tick<'_>),
    mut on_record: impl FnMut(&Record),
    mut on_oom: impl FnMut(&OomKill),
) -> Result<Recording, Error> {
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
    let mut oom = OomCollector::new(tracer.filter.clone());
    let mut exited = watch_exits(&options.watch_pids)?;
    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())
        .map_err(|e| Error::io("installing the SIGTERM handler", e))?;
    let mut sigint = tokio::signal::unix::signal(SignalKind::interrupt())
        .map_err(|e| Error::io("installing the SIGINT handler", e))?;
    let start = Instant::now();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    let mut last_tick = Instant::now();
    let mut model = Model::starting_at(machine::sample());
    let mut remaining = options.watch_pids.len();

    let stop = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(|e| Error::io("waiting on the ring buffer", e))?;
                drain(guard.get_inner_mut(), &mut model, &mut on_record);
                guard.clear_ready();
            }
            guard = oom_ring.readable_mut() => {
                let mut guard = guard.map_err(|e| Error::io("waiting on the OOM ring buffer", e))?;
                oom::collect::drain(guard.get_inner_mut(), &mut tracer, &mut oom, &mut model);
                guard.clear_ready();
                oom::collect::show_ready(&mut model, &mut on_oom, false);
            }
            _ = ticker.tick() => {
                drain(ring.get_mut(), &mut model, &mut on_record);
                oom::collect::drain(oom_ring.get_mut(), &mut tracer, &mut oom, &mut model);
                model.oom.apply_kmsg(&oom.poll_kmsg());
                oom::collect::show_ready(&mut model, &mut on_oom, false);
                let now = Instant::now();
                model.close_interval(machine::sample());
                on_tick(Tick {
                    elapsed: now - start,
                    interval: now - last_tick,
                    counts: model.take_interval(),
                    counters: tracer.counters()?,
                    machine: model.machine.last().copied().unwrap_or_default(),
                    model: &model,
                });
                last_tick = now;
            }
            _ = sleep_until(deadline) => break StopReason::Duration,
            _ = sigint.recv() => break StopReason::Interrupted,
            _ = sigterm.recv() => break StopReason::Interrupted,
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
    drain(ring.get_mut(), &mut model, &mut on_record);
    // Minor faults still in per-CPU batches: stop the fault hooks, take what they sent last,
    // then what they never sent.
    let leftovers = tracer.stop_faults()?;
    drain(ring.get_mut(), &mut model, &mut on_record);
    for batch in &leftovers {
        model.add_minor_batch(batch);
    }
    oom::collect::drain(oom_ring.get_mut(), &mut tracer, &mut oom, &mut model);
    model.oom.apply_kmsg(&oom.poll_kmsg());
    oom::collect::show_ready(&mut model, &mut on_oom, true);
    model.close_interval(machine::sample());
    let counters = tracer.counters()?;
    Ok(Recording {
        model,
        counters,
        hooks: tracer.hooks.clone(),
        elapsed: start.elapsed(),
        stop,
    })
}

/// Decodes every record waiting in the ring into the model.
fn drain(ring: &mut RingBuf<MapData>, model: &mut Model, on_record: &mut impl FnMut(&Record)) {
    while let Some(item) = ring.next() {
        let record = decode(&item);
        if let Ok(record) = &record {
            on_record(record);
        }
        model.apply(record);
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
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    debug_assert!(fd.as_raw_fd() >= 0);
    Ok(fd)
}
