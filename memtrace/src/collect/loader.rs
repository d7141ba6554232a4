//! Loads the kernel programs with the facts and filter they need, and attaches each hook on its
//! own so that one refused hook is reported without taking the others down.
use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        BtfTracePoint, PerfEvent,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
    util::online_cpus,
};
use memtrace_common::{EVENT_KIND_SLOTS, fault_end, filter_mode, maps, stat};

use super::{filter::Filter, kernel::KernelFacts};
use crate::{
    error::Error,
    samples::{HookStatus, KernelCounters},
};

/// The compiled kernel programs, embedded at build time.
pub(crate) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/memtrace"));

/// Which part of the picture a hook serves: each part is attached when asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Fault start and end, renames, in-flight state across context switches, process start
    /// and exit (and `--children`).
    Faults,
    /// Reclaim, compaction, swap and kswapd (not with `--faults-only`).
    Reclaim,
    /// OOM kills and their aftermath (needs the OOM offsets from BTF).
    Oom,
}

/// Every BTF-tracepoint hook: (program, tracepoint, part). Each is attached on its own: a
/// kernel without one loses that part of the picture and says so.
const HOOKS: [(&str, &str, Part); 33] = [
    ("page_fault_user", "page_fault_user", Part::Faults),
    ("page_fault_kernel", "page_fault_kernel", Part::Faults),
    ("sched_switch", "sched_switch", Part::Faults),
    ("task_rename", "task_rename", Part::Faults),
    ("count_memcg_events", "count_memcg_events", Part::Faults),
    ("sched_process_fork", "sched_process_fork", Part::Faults),
    ("sched_process_exit", "sched_process_exit", Part::Faults),
    (
        "direct_reclaim_begin",
        "mm_vmscan_direct_reclaim_begin",
        Part::Reclaim,
    ),
    (
        "direct_reclaim_end",
        "mm_vmscan_direct_reclaim_end",
        Part::Reclaim,
    ),
    (
        "memcg_reclaim_begin",
        "mm_vmscan_memcg_reclaim_begin",
        Part::Reclaim,
    ),
    (
        "memcg_reclaim_end",
        "mm_vmscan_memcg_reclaim_end",
        Part::Reclaim,
    ),
    (
        "softlimit_reclaim_begin",
        "mm_vmscan_memcg_softlimit_reclaim_begin",
        Part::Reclaim,
    ),
    (
        "softlimit_reclaim_end",
        "mm_vmscan_memcg_softlimit_reclaim_end",
        Part::Reclaim,
    ),
    (
        "node_reclaim_begin",
        "mm_vmscan_node_reclaim_begin",
        Part::Reclaim,
    ),
    (
        "node_reclaim_end",
        "mm_vmscan_node_reclaim_end",
        Part::Reclaim,
    ),
    ("throttled", "mm_vmscan_throttled", Part::Reclaim),
    (
        "try_to_compact_pages",
        "mm_compaction_try_to_compact_pages",
        Part::Reclaim,
    ),
    ("compaction_begin", "mm_compaction_begin", Part::Reclaim),
    ("compaction_end", "mm_compaction_end", Part::Reclaim),
    (
        "compaction_deferred",
        "mm_compaction_deferred",
        Part::Reclaim,
    ),
    (
        "compaction_defer_reset",
        "mm_compaction_defer_reset",
        Part::Reclaim,
    ),
    ("kswapd_wake", "mm_vmscan_kswapd_wake", Part::Reclaim),
    ("kswapd_sleep", "mm_vmscan_kswapd_sleep", Part::Reclaim),
    ("wakeup_kswapd", "mm_vmscan_wakeup_kswapd", Part::Reclaim),
    ("oom_mark_victim", "mark_victim", Part::Oom),
    ("oom_signal_generate", "signal_generate", Part::Oom),
    (
        "oom_direct_reclaim",
        "mm_vmscan_direct_reclaim_begin",
        Part::Oom,
    ),
    (
        "oom_memcg_reclaim",
        "mm_vmscan_memcg_reclaim_begin",
        Part::Oom,
    ),
    ("oom_victim_exit", "sched_process_exit", Part::Oom),
    ("oom_wake_reaper", "wake_reaper", Part::Oom),
    ("oom_start_reaping", "start_task_reaping", Part::Oom),
    ("oom_finish_reaping", "finish_task_reaping", Part::Oom),
    ("oom_skip_reaping", "skip_task_reaping", Part::Oom),
];

/// Which hook ends a fault (see `memtrace_common::fault_end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultEnd {
    /// `MemcgEvent` where the kernel has it, else `Perf` (see `FaultEnd::resolve`).
    Auto,
    /// Perf software events PAGE_FAULTS_MIN/MAJ on every CPU.
    Perf,
    /// `memcg:count_memcg_events(PGFAULT)`.
    MemcgEvent,
}

/// What the tracer is asked to do.
#[derive(Clone, Debug)]
pub struct TracerConfig {
    /// Which tasks are traced.
    pub filter: Filter,
    /// Ring-buffer size in bytes (a power of two, at least one page).
    pub ring_bytes: u32,
    /// Which hook ends a fault.
    pub fault_end: FaultEnd,
    /// Attach the reclaim, compaction, swap and kswapd hooks too.
    pub reclaim: bool,
}

impl Default for TracerConfig {
    fn default() -> Self {
        Self {
            filter: Filter::All,
            ring_bytes: 4 << 20,
            fault_end: FaultEnd::Auto,
            reclaim: true,
        }
    }
}

/// The parses of the kernel's BTF that loading and attaching need, started on threads of their
/// own so that they overlap with each other and with the caller reading its facts: each parse
/// of /sys/kernel/btf/vmlinux takes tens of ms, and start-up needs three (the facts', aya's
/// loader's, and the one attaching reads).
pub struct Preload {
    loader: std::thread::JoinHandle<EbpfLoader<'static>>,
    btf: std::thread::JoinHandle<Result<Btf, Error>>,
}

impl Preload {
    /// Starts both parses.
    pub fn start() -> Self {
        Self {
            loader: std::thread::spawn(EbpfLoader::new),
            btf: std::thread::spawn(kernel_btf),
        }
    }

    fn join(self) -> Result<(EbpfLoader<'static>, Btf), Error> {
        let panicked = || Error::Btf {
            what: "/sys/kernel/btf/vmlinux".into(),
            reason: "the thread parsing it panicked".into(),
        };
        let loader = self.loader.join().map_err(|_| panicked())?;
        let btf = self.btf.join().map_err(|_| panicked())??;
        Ok((loader, btf))
    }
}

/// Loaded and attached kernel programs. Dropping it detaches everything.
pub struct Tracer {
    pub(crate) ebpf: Ebpf,
    /// One entry per hook, attached or not.
    pub hooks: Vec<HookStatus>,
    /// What the fault hooks trace (OOM kills are reported whatever it is, and marked).
    pub filter: Filter,
}

impl Tracer {
    /// Loads the programs, fills the filter, and attaches every hook.
    pub fn start(config: &TracerConfig, facts: &KernelFacts) -> Result<Self, Error> {
        Self::start_preloaded(config, facts, Preload::start())
    }

    /// [`Tracer::start`] with the BTF parses already under way.
    pub fn start_preloaded(
        config: &TracerConfig,
        facts: &KernelFacts,
        preload: Preload,
    ) -> Result<Self, Error> {
        if EBPF_OBJECT.is_empty() {
            return Err(Error::NoEbpfObject);
        }
        raise_memlock_limit();
        let filter = config.filter.globals();
        let fault_end = config.fault_end.resolve(facts);
        let end = match fault_end {
            FaultEnd::Perf | FaultEnd::Auto => fault_end::PERF,
            FaultEnd::MemcgEvent => fault_end::MEMCG_EVENT,
        };
        let (mut loader, btf) = preload.join()?;
        let mut ebpf = loader
            .override_global("VM_PGFAULT", &facts.vm_pgfault, true)
            .override_global("VM_PGMAJFAULT", &facts.vm_pgmajfault, true)
            .override_global("VM_PSWPIN", &facts.vm_pswpin, true)
            .override_global("VM_ZSWPIN", &facts.vm_zswpin, true)
            .override_global("VM_PSWPOUT", &facts.vm_pswpout, true)
            .override_global("VM_THP_FAULT_ALLOC", &facts.vm_thp_fault_alloc, true)
            .override_global("FILTER_MODE", &filter.mode, true)
            .override_global("FOLLOW_CHILDREN", &filter.follow_children, true)
            .override_global("CGROUP_ID", &filter.cgroup_id, true)
            .override_global("CGROUP_LEVEL", &filter.cgroup_level, true)
            .override_global("FAULT_END", &end, true)
            .override_global("WAKEUP_BYTES", &u64::from(config.ring_bytes / 8), true)
            .override_global("OFFSETS", &facts.offsets, true)
            .map_max_entries(maps::EVENTS, config.ring_bytes)
            .load(EBPF_OBJECT)?;
        if filter.mode == filter_mode::PIDS {
            fill_pid_filter(&mut ebpf, config.filter.pids())?;
        }
        let mut tracer = Self {
            ebpf,
            hooks: Vec::new(),
            filter: config.filter.clone(),
        };
        tracer.attach_all(config, fault_end, facts.oom_offsets, &btf)?;
        drop(btf);
        // Parsing the kernel's BTF leaves ~25 MB of freed heap that glibc keeps; hand it back
        // before recording starts.
        // SAFETY: malloc_trim only releases free memory.
        unsafe { libc::malloc_trim(0) };
        Ok(tracer)
    }

    fn attach_all(
        &mut self,
        config: &TracerConfig,
        fault_end: FaultEnd,
        oom_offsets: bool,
        btf: &Btf,
    ) -> Result<(), Error> {
        for (program, tracepoint, part) in HOOKS {
            match part {
                Part::Reclaim if !config.reclaim => {}
                Part::Oom if !oom_offsets => self.hooks.push(HookStatus {
                    program: program.into(),
                    hook: format!("tp_btf/{tracepoint}"),
                    error: Some("kernel BTF lacks a struct member the OOM hooks read".into()),
                }),
                _ => self.attach_btf(program, tracepoint, btf),
            }
        }
        if fault_end != FaultEnd::MemcgEvent {
            self.attach_perf("fault_done_minor", SoftwareEvent::PageFaultsMin);
            self.attach_perf("fault_done_major", SoftwareEvent::PageFaultsMaj);
        }
        if oom_offsets {
            self.load_task_iterator(btf);
        }
        let ok = |name: &str| {
            self.hooks
                .iter()
                .any(|h| h.program == name && h.error.is_none())
        };
        let ends = match fault_end {
            FaultEnd::Perf | FaultEnd::Auto => ok("fault_done_minor") && ok("fault_done_major"),
            FaultEnd::MemcgEvent => ok("count_memcg_events"),
        };
        if !ok("page_fault_user") || !ends {
            let failed: Vec<String> = self
                .hooks
                .iter()
                .filter_map(|h| h.error.as_ref().map(|e| format!("{}: {e}", h.hook)))
                .collect();
            return Err(Error::NothingAttached(failed.join("; ")));
        }
        Ok(())
    }

    pub(crate) fn attach_btf(&mut self, program: &'static str, tracepoint: &str, btf: &Btf) {
        let hook = format!("tp_btf/{tracepoint}");
        let result = (|| -> Result<(), String> {
            let prog: &mut BtfTracePoint = self
                .ebpf
                .program_mut(program)
                .ok_or("program missing from the object")?
                .try_into()
                .map_err(|e: aya::programs::ProgramError| e.to_string())?;
            prog.load(tracepoint, btf).map_err(|e| describe(&e))?;
            prog.attach().map_err(|e| describe(&e))?;
            Ok(())
        })();
        self.hooks.push(HookStatus {
            program: program.into(),
            hook,
            error: result.err(),
        });
    }

    fn attach_perf(&mut self, program: &'static str, event: SoftwareEvent) {
        let hook = format!("perf/{event:?}");
        let result = (|| -> Result<(), String> {
            let prog: &mut PerfEvent = self
                .ebpf
                .program_mut(program)
                .ok_or("program missing from the object")?
                .try_into()
                .map_err(|e: aya::programs::ProgramError| e.to_string())?;
            prog.load().map_err(|e| describe(&e))?;
            let cpus = online_cpus().map_err(|(what, e)| format!("{what}: {e}"))?;
            for cpu in cpus {
                prog.attach(
                    PerfEventConfig::Software(event),
                    PerfEventScope::AllProcessesOneCpu { cpu },
                    SamplePolicy::Period(1),
                    false,
                )
                .map_err(|e| describe(&e))?;
            }
            Ok(())
        })();
        self.hooks.push(HookStatus {
            program: program.into(),
            hook,
            error: result.err(),
        });
    }

    /// Takes the ring buffer out of the object, for the drain task.
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>, Error> {
        let map = self.ebpf.take_map(maps::EVENTS).ok_or(Error::Map {
            name: maps::EVENTS,
            source: aya::maps::MapError::InvalidName {
                name: maps::EVENTS.into(),
            },
        })?;
        RingBuf::try_from(map).map_err(|source| Error::Map {
            name: maps::EVENTS,
            source,
        })
    }

    /// Reads the kernel-side lost and diagnostic counters.
    pub fn counters(&self) -> Result<KernelCounters, Error> {
        let lost = per_cpu_sums(&self.ebpf, maps::LOST, EVENT_KIND_SLOTS)?;
        let stats = per_cpu_sums(&self.ebpf, maps::STATS, stat::SLOTS)?;
        let mut counters = KernelCounters::default();
        counters.lost.copy_from_slice(&lost);
        counters.unmatched_ends = stats[stat::UNMATCHED_END as usize];
        counters.parked = stats[stat::PARKED as usize];
        counters.park_failed = stats[stat::PARK_FAILED as usize];
        counters.children_added = stats[stat::CHILDREN_ADDED as usize];
        Ok(counters)
    }
}

fn per_cpu_sums(ebpf: &Ebpf, name: &'static str, slots: u32) -> Result<Vec<u64>, Error> {
    let map_err = |source| Error::Map { name, source };
    let map = ebpf.map(name).ok_or(Error::Map {
        name,
        source: aya::maps::MapError::InvalidName { name: name.into() },
    })?;
    let array = PerCpuArray::<_, u64>::try_from(map).map_err(map_err)?;
    (0..slots)
        .map(|i| {
            array
                .get(&i, 0)
                .map(|values| values.iter().sum())
                .map_err(map_err)
        })
        .collect()
}

fn fill_pid_filter(ebpf: &mut Ebpf, pids: &[u32]) -> Result<(), Error> {
    let name = maps::PIDS;
    let map_err = |source| Error::Map { name, source };
    let map = ebpf.map_mut(name).ok_or(Error::Map {
        name,
        source: aya::maps::MapError::InvalidName { name: name.into() },
    })?;
    let mut filter = HashMap::<_, u32, u8>::try_from(map).map_err(map_err)?;
    for pid in pids {
        filter.insert(pid, 1, 0).map_err(map_err)?;
    }
    Ok(())
}

/// The kernel's BTF for the loader.
pub(crate) fn kernel_btf() -> Result<Btf, Error> {
    Btf::from_sys_fs().map_err(|e| Error::Btf {
        what: "/sys/kernel/btf/vmlinux".into(),
        reason: e.to_string(),
    })
}

/// The error with its sources, which carry the kernel's reason, on one line; the verifier's
/// log (many lines) goes to the debug log only.
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    log::debug!("{text}");
    match text.split_once(". Verifier output:") {
        Some((head, _)) => format!("{head} (verifier log with RUST_LOG=debug)"),
        None => text.lines().next().unwrap_or_default().to_string(),
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. Newer ones charge the memcg, and
/// some sandboxes drop CAP_SYS_RESOURCE, so a failure here is only worth a debug line.
pub(crate) fn raise_memlock_limit() {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } != 0 {
        log::debug!(
            "setrlimit(RLIMIT_MEMLOCK) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}
