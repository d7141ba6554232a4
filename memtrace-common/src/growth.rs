//! Memory growth: each traced process's memory as the kernel counts it, read every interval by
//! a task iterator, and the stacks of the faults that brought new pages in (`--stacks`).
use crate::COMM_LEN;

/// One process's memory, written by the `process_memory` task iterator, 96 bytes. Pages are
/// `mm->rss_stat[]` as `get_mm_counter()` reads them; the memcg figures are the task's memory
/// cgroup's page counter.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryRecord {
    /// Thread group id.
    pub tgid: u32,
    /// Explicit padding so the type has none implicit.
    pub _pad: u32,
    /// The leader's `start_time` (CLOCK_MONOTONIC ns): with `tgid`, the process's identity.
    pub start_ns: u64,
    pub rss_file_pages: i64,
    pub rss_anon_pages: i64,
    pub swap_entries: i64,
    pub rss_shmem_pages: i64,
    /// The memory cgroup's kernfs id (the inode of its directory; 0: unknown).
    pub memcg_id: u64,
    /// Its `memory` page counter: usage and limit (`max`), in pages.
    pub memcg_usage_pages: u64,
    pub memcg_max_pages: u64,
    /// The leader's `comm`, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// Map names of `--stacks`.
pub mod stack_maps {
    /// `BPF_MAP_TYPE_STACK_TRACE`: user and kernel stacks by id.
    pub const FAULT_STACKS: &str = "FAULT_STACKS";
    /// [`super::StackKey`] → pages brought in under that stack.
    pub const FAULT_STACK_PAGES: &str = "FAULT_STACK_PAGES";
}

/// Stacks kept by `FAULT_STACKS` (each id is one user or kernel stack).
pub const MAX_FAULT_STACKS: u32 = 8192;
/// Distinct (process, user stack, kernel stack) keys counted.
pub const MAX_STACK_KEYS: u32 = 16_384;

/// A count of `FAULT_STACK_PAGES`, 16 bytes. A stack id below zero is the error
/// `bpf_get_stackid` returned (`-EFAULT`: the stack could not be read).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackKey {
    pub tgid: u32,
    pub user_stack: i32,
    pub kernel_stack: i32,
    /// Explicit padding so the type has none implicit.
    pub _pad: u32,
}

#[cfg(feature = "user")]
// SAFETY: `MemoryRecord` is `repr(C)`, `Copy`, and has no padding.
unsafe impl aya::Pod for MemoryRecord {}
#[cfg(feature = "user")]
// SAFETY: `StackKey` is `repr(C)`, `Copy`, and has no padding.
unsafe impl aya::Pod for StackKey {}
