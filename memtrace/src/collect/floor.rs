//! The bench's floor (`memtrace workload floor`): memtrace-ebpf's `floor` programs, the
//! cheapest ones possible on memtrace's hooks, loaded and attached alone.
use aya::{EbpfLoader, maps::PerCpuArray, programs::BtfTracePoint};

use super::{
    kernel::KernelFacts,
    loader::{EBPF_OBJECT, describe, kernel_btf, raise_memlock_limit},
};
use crate::error::Error;

/// Which floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorKind {
    /// Empty programs on the fault start and end hooks.
    Empty,
    /// A timestamp at the start and the time summed per CPU at the end.
    Timed,
    /// `Timed`, and each side also reads which thread it runs in: the fault is counted only in
    /// the thread that started it, and its process id summed (the least attribution costs).
    Attributed,
    /// An empty program on `sched_switch`.
    Switch,
}

impl FloorKind {
    /// Its name on the command line (`memtrace workload bench floor --kind NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Timed => "timed",
            Self::Attributed => "attributed",
            Self::Switch => "switch",
        }
    }
}

/// Attached floor programs; dropping it detaches them.
pub struct Floor {
    ebpf: aya::Ebpf,
}

impl Floor {
    /// Loads the object with only the floor's programs attached.
    pub fn start(kind: FloorKind, facts: &KernelFacts) -> Result<Self, Error> {
        if EBPF_OBJECT.is_empty() {
            return Err(Error::NoEbpfObject);
        }
        raise_memlock_limit();
        let timed: u32 = match kind {
            FloorKind::Empty | FloorKind::Switch => 0,
            FloorKind::Timed => 1,
            FloorKind::Attributed => 2,
        };
        let mut ebpf = EbpfLoader::new()
            .override_global("VM_PGFAULT", &facts.vm_pgfault, true)
            .override_global("FLOOR_TIMED", &timed, true)
            .override_global("OFFSETS", &facts.offsets, true)
            .load(EBPF_OBJECT)?;
        let btf = kernel_btf()?;
        let hooks: &[(&str, &str)] = match kind {
            FloorKind::Empty | FloorKind::Timed | FloorKind::Attributed => &[
                ("floor_fault_start", "page_fault_user"),
                ("floor_fault_end", "count_memcg_events"),
            ],
            FloorKind::Switch => &[("floor_switch", "sched_switch")],
        };
        for &(program, tracepoint) in hooks {
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(program)
                .ok_or_else(|| Error::NothingAttached(format!("{program} missing")))?
                .try_into()
                .map_err(|e: aya::programs::ProgramError| {
                    Error::NothingAttached(format!("{program}: {e}"))
                })?;
            prog.load(tracepoint, &btf)
                .and_then(|()| prog.attach().map(|_| ()))
                .map_err(|e| {
                    Error::NothingAttached(format!("tp_btf/{tracepoint}: {}", describe(&e)))
                })?;
        }
        Ok(Self { ebpf })
    }

    /// Faults timed and their total time in ns, over every CPU (0, 0 unless timed).
    pub fn timed(&self) -> (u64, u64) {
        let Some(map) = self.ebpf.map("FLOOR_SUM") else {
            return (0, 0);
        };
        let Ok(sums) = PerCpuArray::<_, u64>::try_from(map) else {
            return (0, 0);
        };
        let sum = |i: u32| sums.get(&i, 0).map_or(0, |v| v.iter().sum());
        (sum(0), sum(1))
    }
}
