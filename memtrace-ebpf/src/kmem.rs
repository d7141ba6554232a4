//! The page allocator's own events: external fragmentation, counted per CPU rather than
//! streamed (it can fire thousands of times a second under pressure, and only the count and the
//! block sizes matter).
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use memtrace_common::vm_count;

use crate::maps::{VM_COUNTS, bump};

/// `kmem:mm_page_alloc_extfrag(page, alloc_order, fallback_order, alloc_migratetype,
/// fallback_migratetype)`: an allocation found no free block of its migrate type and took one
/// of another, counted by the order of the block it took. Machine-wide, like the zones.
#[btf_tracepoint(function = "mm_page_alloc_extfrag")]
pub fn page_alloc_extfrag(ctx: BtfTracePointContext) -> i32 {
    let fallback_order: i32 = ctx.arg(2);
    let slot = (fallback_order.max(0) as u32).min(vm_count::EXTFRAG_ORDERS - 1);
    bump(&VM_COUNTS, vm_count::EXTFRAG + slot);
    0
}
