//! Any bytes as a ring-buffer record, of either ring: decoded or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtrace::collect::decode::{decode, decode_oom};

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
    let _ = decode_oom(data);
});
