//! The OOM candidates: a BPF task iterator (`iter/task`) that userspace reads right after a
//! kill. One pass over the kernel's task list gives every process's badness inputs read the
//! same way as `oom_badness()`, without the races of parsing `/proc` file by file.
use core::ffi::c_void;

use aya_ebpf::helpers::bpf_seq_write;
use memtrace_common::oom::{OOM_MEMCG_LEVELS, OomCandidateRecord};

use crate::{
    kernel::{IterProcess, iter_process, off, peek, read_at},
    task::{css_id, memcg_css, read_comm, read_mm_counters},
};

/// Called once per task, and once more with a null task at the end.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub fn oom_candidates(ctx: *mut c_void) -> i32 {
    // The OOM killer scores whole processes: one record per leader.
    let Some(IterProcess {
        seq,
        task,
        tgid,
        flags,
        mm,
    }) = iter_process(ctx)
    else {
        return 0;
    };
    let pid = tgid;
    let signal: u64 = peek(task, off!(task_signal));
    let cred: u64 = peek(task, off!(task_real_cred));
    let [file, anon, swap, shmem] = read_mm_counters(mm);
    let mut record = OomCandidateRecord {
        tgid,
        pid,
        oom_score_adj: i32::from(peek::<i16>(signal, off!(signal_oom_score_adj))),
        task_flags: flags,
        uid: read_at(cred, off!(cred_uid)).unwrap_or(u32::MAX),
        _pad: 0,
        comm: read_comm(task),
        rss_file_pages: file,
        rss_anon_pages: anon,
        swap_entries: swap,
        rss_shmem_pages: shmem,
        pgtables_bytes: peek(mm, off!(mm_pgtables_bytes)),
        mm_flags: peek(mm, off!(mm_flags)),
        memcg_ids: [0; OOM_MEMCG_LEVELS],
    };
    let mut css = memcg_css(task);
    for slot in record.memcg_ids.iter_mut() {
        if css == 0 {
            break;
        }
        *slot = css_id(css);
        css = peek(css, off!(css_parent));
    }
    // SAFETY: `seq` came from the iterator's meta; the record lives on this stack frame.
    unsafe {
        bpf_seq_write(
            seq.cast(),
            (&raw const record).cast(),
            size_of::<OomCandidateRecord>() as u32,
        )
    };
    0
}
