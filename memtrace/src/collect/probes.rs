//! Probes that read the kernel on demand rather than stream: the BPF task iterator (a consistent
//! snapshot of every task, for OOM candidates and per-process memory) and kernel stacks, plus
//! the OOM ring buffer.
use std::io::Read;

use aya::{
    maps::{MapData, PerCpuHashMap, RingBuf, StackTraceMap},
    programs::Iter,
};
use memtrace_common::{
    growth::{StackKey, stack_maps},
    oom::oom_maps,
};

use super::loader::{Tracer, describe};
use crate::error::Error;

/// The task iterator programs (loaded with the others, attached for each snapshot): the OOM
/// candidates, and every traced process's memory.
pub(crate) const ITER_PROGRAM: &str = "oom_candidates";
pub(crate) const MEMORY_PROGRAM: &str = "process_memory";

impl Tracer {
    /// Takes the OOM ring buffer out of the object, for the session.
    pub fn take_oom_ring(&mut self) -> Result<RingBuf<MapData>, Error> {
        let name = oom_maps::OOM_EVENTS;
        let map = self.ebpf.take_map(name).ok_or(Error::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        })?;
        RingBuf::try_from(map).map_err(|source| Error::Map { name, source })
    }

    /// Runs the OOM candidates' task iterator once and returns its records' bytes.
    pub fn oom_candidates(&mut self) -> Result<Vec<u8>, String> {
        self.run_iterator(ITER_PROGRAM)
    }

    /// Runs the memory iterator once and returns its records' bytes.
    pub fn process_memory(&mut self) -> Result<Vec<u8>, String> {
        self.run_iterator(MEMORY_PROGRAM)
    }

    fn run_iterator(&mut self, name: &str) -> Result<Vec<u8>, String> {
        let prog: &mut Iter = self
            .ebpf
            .program_mut(name)
            .ok_or("program missing from the object")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        // A link gives one read of the iterator; each kill takes a fresh one.
        let link_id = prog.attach().map_err(|e| describe(&e))?;
        let link = prog.take_link(link_id).map_err(|e| describe(&e))?;
        let mut file = link.into_file().map_err(|e| describe(&e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("reading the task iterator: {e}"))?;
        Ok(bytes)
    }

    /// The addresses of a trigger's kernel stack, innermost first. The entry is removed once
    /// read: the stack map is a small hash that would otherwise fill up with old triggers.
    pub fn oom_stack(&mut self, stack_id: i64) -> Result<Vec<u64>, String> {
        let id = u32::try_from(stack_id).map_err(|_| {
            let errno = i32::try_from(-stack_id).unwrap_or(0);
            format!(
                "bpf_get_stackid: {}",
                std::io::Error::from_raw_os_error(errno)
            )
        })?;
        let map = self
            .ebpf
            .map_mut(oom_maps::OOM_STACKS)
            .ok_or("no OOM_STACKS map")?;
        let mut stacks = StackTraceMap::try_from(map).map_err(|e| e.to_string())?;
        let trace = stacks.get(&id, 0).map_err(|e| describe(&e))?;
        let _ = stacks.remove(&id);
        Ok(trace.frames().iter().map(|f| f.ip).collect())
    }
}

impl Tracer {
    /// `--stacks`: every (process, user stack, kernel stack) counted so far, with its pages
    /// summed over CPUs.
    pub fn stack_pages(&self) -> Result<Vec<(StackKey, u64)>, String> {
        let map = self
            .ebpf
            .map(stack_maps::FAULT_STACK_PAGES)
            .ok_or("no FAULT_STACK_PAGES map")?;
        let counts: PerCpuHashMap<&MapData, StackKey, u64> =
            PerCpuHashMap::try_from(map).map_err(|e| e.to_string())?;
        counts
            .iter()
            .map(|entry| {
                entry
                    .map(|(key, values)| (key, values.iter().sum()))
                    .map_err(|e| describe(&e))
            })
            .collect()
    }

    /// The addresses of one stack of `FAULT_STACKS`, innermost first.
    pub fn fault_stack(&self, id: u32) -> Result<Vec<u64>, String> {
        let map = self
            .ebpf
            .map(stack_maps::FAULT_STACKS)
            .ok_or("no FAULT_STACKS map")?;
        let stacks = StackTraceMap::try_from(map).map_err(|e| e.to_string())?;
        let trace = stacks.get(&id, 0).map_err(|e| describe(&e))?;
        Ok(trace.frames().iter().map(|f| f.ip).collect())
    }
}
