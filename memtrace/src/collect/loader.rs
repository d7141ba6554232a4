//! Loads the kernel programs with the facts and filter they need, and attaches each hook on its
//! own so that one refused hook is reported without taking the others down.
use std::time::Instant;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        BtfTracePoint, PerfEvent,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
    util::online_cpus,
};
use memtrace_common::{
    EVENT_KIND_SLOTS, MAX_IN_FLIGHT_FAULTS, fault_end, filter_mode,
    growth::{MAX_FAULT_STACKS, MAX_STACK_KEYS, stack_maps},
    maps,
    offsets::KernelOffsets,
    stat, vm_count,
};

use super::{
    btf::{TypeAt, id_index, kind as btf_kind},
    filter::{Filter, FilterGlobals},
    kernel::KernelFacts,
};
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
    /// Fault start and end, renames, process start and exit (and `--children`).
    Faults,
    /// Reclaim, compaction, swap and kswapd (not with `--faults-only`).
    Reclaim,
    /// OOM kills and their aftermath (needs the OOM offsets from BTF).
    Oom,
}

/// Every BTF-tracepoint hook: (program, tracepoint, part). Each is attached on its own: a
/// kernel without one loses that part of the picture and says so.
const HOOKS: [(&str, &str, Part); 35] = [
    ("page_fault_user", "page_fault_user", Part::Faults),
    ("page_fault_kernel", "page_fault_kernel", Part::Faults),
    ("task_rename", "task_rename", Part::Faults),
    ("count_memcg_events", "count_memcg_events", Part::Faults),
    ("filemap_fault", "mm_filemap_fault", Part::Faults),
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
    ("page_alloc_extfrag", "mm_page_alloc_extfrag", Part::Reclaim),
    (
        "kcompactd_wake",
        "mm_compaction_kcompactd_wake",
        Part::Reclaim,
    ),
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

/// The tracepoint `--stacks` adds.
const FAULT_STACK_TRACEPOINT: &str = "mm_page_alloc";

/// How a program is loaded and attached.
#[derive(Clone, Copy, Debug)]
enum Load {
    /// A BTF tracepoint.
    Tracepoint(&'static str),
    /// A perf software event on every CPU.
    Perf(SoftwareEvent),
    /// The task iterator, attached for each snapshot (see `probes.rs`).
    TaskIter,
}

impl Load {
    fn hook(self) -> String {
        match self {
            Self::Tracepoint(tracepoint) => format!("tp_btf/{tracepoint}"),
            Self::Perf(event) => format!("perf/{event:?}"),
            Self::TaskIter => "iter/task".into(),
        }
    }

    fn load(self, program: &mut aya::programs::Program, btf: &Btf) -> Result<(), String> {
        let wrong = |e: aya::programs::ProgramError| e.to_string();
        let result = match self {
            Self::Tracepoint(tracepoint) => {
                let prog: &mut BtfTracePoint = program.try_into().map_err(wrong)?;
                prog.load(tracepoint, btf)
            }
            Self::Perf(_) => {
                let prog: &mut PerfEvent = program.try_into().map_err(wrong)?;
                prog.load()
            }
            Self::TaskIter => {
                let prog: &mut aya::programs::Iter = program.try_into().map_err(wrong)?;
                prog.load("task", btf)
            }
        };
        result.map_err(|e| describe(&e))
    }
}

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
    /// `--stacks`: count the pages faults bring in under their stacks, one allocation in this
    /// many (`None`: the hook is not attached and its maps take one entry each).
    pub stacks_every: Option<u32>,
}

impl Default for TracerConfig {
    fn default() -> Self {
        Self {
            filter: Filter::All,
            ring_bytes: 4 << 20,
            fault_end: FaultEnd::Auto,
            reclaim: true,
            stacks_every: None,
        }
    }
}

/// The values the programs are loaded with: everything `EbpfLoader` needs, owned, so that the
/// loader can do its work on a thread of its own.
struct LoadRequest {
    vm: [(&'static str, u32); 6],
    filter: FilterGlobals,
    end: u32,
    wakeup_bytes: u64,
    offsets: KernelOffsets,
    in_flight: u32,
    in_flight_mask: u32,
    ring_bytes: u32,
    stacks_every: Option<u32>,
    gfp_movable: u32,
}

impl LoadRequest {
    fn load<'a>(&'a self, loader: &mut EbpfLoader<'a>) -> Result<Ebpf, Error> {
        for (name, value) in &self.vm {
            loader.override_global(name, value, true);
        }
        Ok(loader
            .override_global("FILTER_MODE", &self.filter.mode, true)
            .override_global("FOLLOW_CHILDREN", &self.filter.follow_children, true)
            .override_global("CGROUP_ID", &self.filter.cgroup_id, true)
            .override_global("CGROUP_LEVEL", &self.filter.cgroup_level, true)
            .override_global("FAULT_END", &self.end, true)
            .override_global("WAKEUP_BYTES", &self.wakeup_bytes, true)
            .override_global("OFFSETS", &self.offsets, true)
            .override_global("IN_FLIGHT_MASK", &self.in_flight_mask, true)
            .map_max_entries(maps::EVENTS, self.ring_bytes)
            .map_max_entries("IN_FLIGHT", self.in_flight)
            .override_global(
                "STACKS_EVERY",
                self.stacks_every.as_ref().unwrap_or(&1),
                true,
            )
            .override_global("GFP_MOVABLE", &self.gfp_movable, true)
            .map_max_entries(
                stack_maps::FAULT_STACKS,
                self.stack_entries(MAX_FAULT_STACKS),
            )
            .map_max_entries(
                stack_maps::FAULT_STACK_PAGES,
                self.stack_entries(MAX_STACK_KEYS),
            )
            .load(EBPF_OBJECT)?)
    }

    /// The stack maps' size: one entry when `--stacks` is off (they are preallocated).
    fn stack_entries(&self, entries: u32) -> u32 {
        if self.stacks_every.is_some() {
            entries
        } else {
            1
        }
    }
}

/// The start-up work that can run beside the caller reading its facts, on a thread of its
/// own: aya's loader parses all of /sys/kernel/btf/vmlinux (30–40 ms here) as it is made. The
/// thread creates the maps once it is given the facts, and frees its BTF after handing the
/// object back, beside the start of tracing rather than before it.
pub struct Preload {
    request: std::sync::mpsc::Sender<LoadRequest>,
    loaded: std::sync::mpsc::Receiver<Result<Ebpf, Error>>,
    release: std::sync::mpsc::Sender<()>,
}

impl Preload {
    /// Starts the loader's parse.
    pub fn start() -> Self {
        let (request, requests) = std::sync::mpsc::channel::<LoadRequest>();
        let (done, loaded) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut loader = EbpfLoader::new();
            log::debug!(
                "start-up: aya's parse of the kernel's BTF {:.1} ms",
                ms(started)
            );
            // No request: the caller stopped before loading (a bad input, an error).
            if let Ok(request) = requests.recv() {
                let started = Instant::now();
                let loaded = request.load(&mut loader);
                log::debug!(
                    "start-up: object relocated, maps made {:.1} ms",
                    ms(started)
                );
                let _ = done.send(loaded);
                // Freeing the parse takes a core for several ms: not while the programs load.
                let _ = released.recv();
                drop(loader);
                // Parsing the kernel's BTF leaves ~25 MB of freed heap that glibc keeps.
                // SAFETY: malloc_trim only releases free memory.
                unsafe { libc::malloc_trim(0) };
            }
        });
        Self {
            request,
            loaded,
            release,
        }
    }

    /// Loads the object on the loader's thread; meanwhile makes the BTF that attaching looks
    /// its types up in, from `facts`. Returns both, and what frees the loader's parse when
    /// dropped.
    fn load(
        self,
        request: LoadRequest,
        facts: &KernelFacts,
    ) -> Result<(Ebpf, Btf, std::sync::mpsc::Sender<()>), Error> {
        let panicked = || Error::Btf {
            what: "/sys/kernel/btf/vmlinux".into(),
            reason: "the thread parsing it panicked".into(),
        };
        self.request.send(request).map_err(|_| panicked())?;
        let started = Instant::now();
        let btf = attach_btf(&facts.attach_types);
        log::debug!("start-up: attach types indexed {:.1} ms", ms(started));
        let ebpf = self.loaded.recv().map_err(|_| panicked())??;
        Ok((ebpf, btf?, self.release))
    }
}

/// What the programs attach by, as (BTF kind, name): each tracepoint's `btf_trace_` typedef
/// (aya looks them up by name) and the task iterator's function.
pub(crate) fn attach_types() -> impl Iterator<Item = (u32, String)> {
    HOOKS
        .iter()
        .map(|(_, tracepoint, _)| *tracepoint)
        .chain([FAULT_STACK_TRACEPOINT])
        .map(|tracepoint| (btf_kind::TYPEDEF, format!("btf_trace_{tracepoint}")))
        .chain([(btf_kind::FUNC, "bpf_iter_task".to_string())])
}

/// The BTF attaching looks the programs' types up in. aya finds them by name in a parse, and a
/// second parse of the kernel's whole BTF cost start-up 30–40 ms: the facts already know their
/// ids, so the parse is of an index that holds only them, each at its own id
/// (`btf::id_index`, 7–12 ms here, beside aya's own parse). Without them (a kernel lacking every hook), the whole BTF, so
/// that aya's errors name what is missing.
fn attach_btf(types: &[TypeAt]) -> Result<Btf, Error> {
    if types.is_empty() {
        return kernel_btf();
    }
    Btf::parse(&id_index(types), aya::Endianness::default()).map_err(|e| Error::Btf {
        what: "the index of the kernel's attach types".into(),
        reason: e.to_string(),
    })
}

/// Milliseconds since `since`, for the start-up's debug log.
fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Slots of the in-flight fault array: pid_max rounded up to a power of two, so that every
/// thread has a slot of its own, at most `MAX_IN_FLIGHT_FAULTS` (beyond it two threads may share
/// one, counted as `park_failed`).
fn in_flight_slots() -> u32 {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(MAX_IN_FLIGHT_FAULTS);
    in_flight_slots_for(pid_max)
}

fn in_flight_slots_for(pid_max: u32) -> u32 {
    pid_max
        .clamp(1024, MAX_IN_FLIGHT_FAULTS)
        .next_power_of_two()
        .min(MAX_IN_FLIGHT_FAULTS)
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
        let in_flight = in_flight_slots();
        let request = LoadRequest {
            vm: [
                ("VM_PGFAULT", facts.vm_pgfault),
                ("VM_PGMAJFAULT", facts.vm_pgmajfault),
                ("VM_PSWPIN", facts.vm_pswpin),
                ("VM_ZSWPIN", facts.vm_zswpin),
                ("VM_PSWPOUT", facts.vm_pswpout),
                ("VM_THP_FAULT_ALLOC", facts.vm_thp_fault_alloc),
            ],
            filter,
            end,
            wakeup_bytes: u64::from(config.ring_bytes / 8),
            offsets: facts.offsets,
            in_flight,
            in_flight_mask: in_flight - 1,
            ring_bytes: config.ring_bytes,
            stacks_every: config.stacks_every,
            gfp_movable: facts
                .gfp_bits
                .iter()
                .find(|(name, _)| name == "___GFP_MOVABLE_BIT")
                .map_or(0x08, |&(_, bit)| 1 << bit),
        };
        let (mut ebpf, btf, release) = preload.load(request, facts)?;
        if filter.mode == filter_mode::PIDS {
            fill_pid_filter(&mut ebpf, config.filter.pids())?;
        }
        let mut tracer = Self {
            ebpf,
            hooks: Vec::new(),
            filter: config.filter.clone(),
        };
        tracer.attach_all(config, fault_end, facts.oom_offsets, &btf)?;
        // The loader's thread frees its parse of the kernel's BTF now, beside the start of
        // tracing.
        drop(release);
        Ok(tracer)
    }

    fn attach_all(
        &mut self,
        config: &TracerConfig,
        fault_end: FaultEnd,
        oom_offsets: bool,
        btf: &Btf,
    ) -> Result<(), Error> {
        let mut wanted: Vec<(&'static str, Load)> = Vec::new();
        for (program, tracepoint, part) in HOOKS {
            match part {
                Part::Reclaim if !config.reclaim => {}
                Part::Oom if !oom_offsets => self.hooks.push(HookStatus {
                    program: program.into(),
                    hook: format!("tp_btf/{tracepoint}"),
                    error: Some("kernel BTF lacks a struct member the OOM hooks read".into()),
                }),
                _ => wanted.push((program, Load::Tracepoint(tracepoint))),
            }
        }
        if fault_end != FaultEnd::MemcgEvent {
            wanted.push(("fault_done_minor", Load::Perf(SoftwareEvent::PageFaultsMin)));
            wanted.push(("fault_done_major", Load::Perf(SoftwareEvent::PageFaultsMaj)));
        }
        if config.stacks_every.is_some() {
            wanted.push(("fault_stack", Load::Tracepoint(FAULT_STACK_TRACEPOINT)));
        }
        if oom_offsets {
            wanted.push((super::probes::ITER_PROGRAM, Load::TaskIter));
            wanted.push((super::probes::MEMORY_PROGRAM, Load::TaskIter));
        }
        let started = Instant::now();
        let mut loaded = self.load_programs(&wanted, btf);
        log::debug!("start-up: programs loaded {:.1} ms", ms(started));
        let started = Instant::now();
        for (program, load) in wanted {
            let result = loaded
                .remove(program)
                .unwrap_or_else(|| Err("program missing from the object".into()))
                .and_then(|()| self.attach(program, load));
            self.hooks.push(HookStatus {
                program: program.into(),
                hook: load.hook(),
                error: result.err(),
            });
        }
        log::debug!("start-up: programs attached {:.1} ms", ms(started));
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

    /// Loads the `wanted` programs on as many threads as there are CPUs (up to 4): the
    /// verifier is most of start-up (the two OOM programs alone take ~17 ms each), and the
    /// kernel verifies privileged programs in parallel. The heaviest go first.
    fn load_programs(
        &mut self,
        wanted: &[(&'static str, Load)],
        btf: &Btf,
    ) -> std::collections::HashMap<&'static str, Result<(), String>> {
        let mut queue: Vec<(&'static str, Load, &mut aya::programs::Program)> = self
            .ebpf
            .programs_mut()
            .filter_map(|(name, program)| {
                let &(name, load) = wanted.iter().find(|(wanted, _)| *wanted == name)?;
                Some((name, load, program))
            })
            .collect();
        // Popped from the end: the OOM programs last in the vector.
        queue.sort_by_key(|(name, _, _)| name.starts_with("oom_"));
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        let queue = std::sync::Mutex::new(queue);
        let results = std::sync::Mutex::new(std::collections::HashMap::new());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().map(|mut queue| queue.pop());
                        let Ok(Some((name, load, program))) = next else {
                            break;
                        };
                        let started = Instant::now();
                        let result = load.load(program, btf);
                        log::debug!("start-up: {name} loaded {:.1} ms", ms(started));
                        if let Ok(mut results) = results.lock() {
                            results.insert(name, result);
                        }
                    }
                });
            }
        });
        results.into_inner().unwrap_or_default()
    }

    /// Attaches a loaded program (the task iterator is attached per snapshot instead).
    fn attach(&mut self, program: &'static str, load: Load) -> Result<(), String> {
        let program = self
            .ebpf
            .program_mut(program)
            .ok_or("program missing from the object")?;
        let wrong = |e: aya::programs::ProgramError| e.to_string();
        match load {
            Load::Tracepoint(_) => {
                let prog: &mut BtfTracePoint = program.try_into().map_err(wrong)?;
                prog.attach().map_err(|e| describe(&e))?;
            }
            Load::Perf(event) => {
                let prog: &mut PerfEvent = program.try_into().map_err(wrong)?;
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
            }
            Load::TaskIter => {}
        }
        Ok(())
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
        counters.children_dropped = stats[stat::CHILDREN_DROPPED as usize];
        counters.stalls_dropped = stats[stat::STALLS_DROPPED as usize];
        Ok(counters)
    }

    /// Reads the kernel's cumulative allocator counters (`VM_COUNTS`, by `vm_count` index).
    pub fn allocator_counts(&self) -> Result<Vec<u64>, Error> {
        per_cpu_sums(&self.ebpf, maps::VM_COUNTS, vm_count::SLOTS)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_id_has_a_slot_up_to_the_cap() {
        assert_eq!(in_flight_slots_for(32_768), 32_768);
        assert_eq!(in_flight_slots_for(40_000), 65_536);
        assert_eq!(in_flight_slots_for(4_194_304), MAX_IN_FLIGHT_FAULTS);
        assert_eq!(in_flight_slots_for(300), 1024);
    }

    /// Needs only a readable /sys/kernel/btf/vmlinux, like memtrace itself.
    #[test]
    fn attaching_finds_every_attach_type_where_the_kernels_whole_btf_has_it() {
        use aya_obj::btf::BtfKind;
        let facts = KernelFacts::from_running_kernel().expect("facts");
        let full = kernel_btf().expect("full parse");
        let index = attach_btf(&facts.attach_types).expect("index");
        let kind_of = |kind| {
            if kind == btf_kind::FUNC {
                BtfKind::Func
            } else {
                BtfKind::Typedef
            }
        };
        let mut found = 0;
        for (kind, name) in attach_types() {
            let whole = full.id_by_type_name_kind(&name, kind_of(kind)).ok();
            let indexed = index.id_by_type_name_kind(&name, kind_of(kind)).ok();
            assert_eq!(indexed, whole, "{name}");
            found += usize::from(whole.is_some());
        }
        assert!(found > HOOKS.len() / 2, "only {found} attach types found");
        assert_eq!(found, facts.attach_types.len());
    }
}
