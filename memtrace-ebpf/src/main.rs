//! memtrace's kernel programs. Each file hooks one subsystem; the hooks stay thin and hand their
//! records to userspace through one ring buffer (`maps.rs`); OOM records have their own (`oom`).
#![no_std]
#![no_main]

mod faults;
mod filter;
mod floor;
mod growth;
mod kernel;
mod kmem;
mod maps;
mod oom;
mod process;
mod reclaim;
mod swap;
mod task;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
