//! Any bytes as a recording file: the reader must refuse it or read frames until it stops with
//! a named problem, never panic, never allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtrace::recording::Reader;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = Reader::new(data, std::path::Path::new("fuzz.mtr")) {
        while reader.next_frame().is_some() {}
        let _ = reader.problem();
    }
});
