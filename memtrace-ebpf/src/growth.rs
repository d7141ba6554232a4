//! Memory growth. `process_memory` is a task iterator userspace reads at every interval's
//! close: one record per traced process with its memory as `get_mm_counter()` reads it and its
//! memory cgroup's usage and limit, from one pass over the kernel's task list (no /proc file per
//! pid).
use core::ffi::c_void;

use aya_ebpf::helpers::bpf_seq_write;
use memtrace_common::growth::MemoryRecord;

use crate::{
    filter::task_wanted,
    kernel::{IterTask, PF_KTHREAD, off, read_at},
    task::{memcg_css, memcg_level, read_comm, read_mm_counters},
};

/// Called once per task, and once more with a null task at the end.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub fn process_memory(ctx: *mut c_void) -> i32 {
    let ctx = ctx as *const IterTask;
    // SAFETY: the kernel hands a valid `bpf_iter__task`; the verifier checks these loads.
    let (meta, task) = unsafe { ((*ctx).meta, (*ctx).task) };
    if task == 0 || meta.is_null() {
        return 0;
    }
    let pid: u32 = read_at(task, off!(task_pid)).unwrap_or(0);
    let tgid: u32 = read_at(task, off!(task_tgid)).unwrap_or(0);
    // One record per process: its leader's (the threads share its mm).
    if pid != tgid || pid == 0 {
        return 0;
    }
    let flags: u32 = read_at(task, off!(task_flags)).unwrap_or(0);
    let mm: u64 = read_at(task, off!(task_mm)).unwrap_or(0);
    if flags & PF_KTHREAD != 0 || mm == 0 || !task_wanted(task, tgid) {
        return 0;
    }
    let [file, anon, swap, shmem] = read_mm_counters(mm);
    let memcg = memcg_level(memcg_css(task), true);
    let record = MemoryRecord {
        tgid,
        _pad: 0,
        start_ns: read_at(task, off!(task_start_time)).unwrap_or(0),
        rss_file_pages: file,
        rss_anon_pages: anon,
        swap_entries: swap,
        rss_shmem_pages: shmem,
        memcg_id: memcg.id,
        memcg_usage_pages: memcg.usage_pages,
        memcg_max_pages: memcg.max_pages,
        comm: read_comm(task),
    };
    // SAFETY: `seq` came from the iterator's meta; the record lives on this stack frame.
    unsafe {
        bpf_seq_write(
            (*meta).seq.cast(),
            (&raw const record).cast(),
            size_of::<MemoryRecord>() as u32,
        )
    };
    0
}
