//! Fault-specific parts of the tracer: which hook ends a fault on this machine, and collecting
//! the minor faults still waiting in per-CPU batches when a recording ends.
use aya::{maps::PerCpuArray, programs::Program};
use memtrace_common::batch::{MinorBatch, MinorBatchSlot};

use super::{
    kernel::KernelFacts,
    loader::{FaultEnd, Tracer},
};
use crate::error::Error;

/// Programs that produce fault records.
/// Ends first: a fault that starts after its start hook is gone must not end in a hook still
/// there, which would count it as having no start.
const FAULT_PROGRAMS: [&str; 5] = [
    "count_memcg_events",
    "fault_done_minor",
    "fault_done_major",
    "page_fault_user",
    "page_fault_kernel",
];

impl FaultEnd {
    /// Resolves `Auto`: `count_memcg_events` runs for every fault anyway and costs far less
    /// than a perf software event per fault; the perf events are the fallback where the
    /// tracepoint is missing or the memory controller is disabled.
    pub fn resolve(self, facts: &KernelFacts) -> Self {
        match self {
            Self::Auto if facts.has_count_memcg_events && memcg_enabled() => Self::MemcgEvent,
            Self::Auto => Self::Perf,
            chosen => chosen,
        }
    }
}

/// Whether /proc/cgroups lists the memory controller as enabled.
fn memcg_enabled() -> bool {
    let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    cgroups.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.first() == Some(&"memory") && fields.get(3) == Some(&"1")
    })
}

impl Tracer {
    /// Detaches the fault programs and returns the minor-fault batches they left unsent, so
    /// that the end of a recording loses nothing. Drain the ring buffer after this too: a batch
    /// may have been sent just before.
    pub fn stop_faults(&mut self) -> Result<Vec<MinorBatch>, Error> {
        for name in FAULT_PROGRAMS {
            let Some(program) = self.ebpf.program_mut(name) else {
                continue;
            };
            let result = match program {
                Program::BtfTracePoint(p) => p.unload(),
                Program::PerfEvent(p) => p.unload(),
                _ => Ok(()),
            };
            if let Err(e) = result {
                log::debug!("unloading {name}: {e}");
            }
        }
        let name = "MINOR_BATCH";
        let map = self.ebpf.map(name).ok_or(Error::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        })?;
        let slots = PerCpuArray::<_, MinorBatchSlot>::try_from(map)
            .map_err(|source| Error::Map { name, source })?;
        let values = slots
            .get(&0, 0)
            .map_err(|source| Error::Map { name, source })?;
        Ok(values
            .iter()
            .filter(|slot| slot.batch.count > 0)
            .map(|slot| slot.batch)
            .collect())
    }
}
