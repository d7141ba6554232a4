//! Any text as a command-line value and as a whole command line: parsed or refused with a
//! one-line message, never a panic (clap's debug assertions on the command's definition run
//! too). The value parsers' results stay in their documented range.
#![no_main]

// The command line is defined in the binary's cli module: compile it in as it is.
#[allow(dead_code, reason = "only the parser of the cli module is fuzzed")]
#[path = "../../src/cli/mod.rs"]
mod cli;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use memtrace::args::{MAX_DURATION, MAX_RING_MIB, duration, offset, percent, ring_mib};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = duration(text) {
        assert!(d > Duration::ZERO && d <= MAX_DURATION, "{text:?} gave {d:?}");
    }
    if let Ok(d) = offset(text) {
        assert!(d <= MAX_DURATION, "{text:?} gave {d:?}");
    }
    if let Ok(mib) = ring_mib(text) {
        assert!(mib.is_power_of_two() && mib <= MAX_RING_MIB, "{text:?} gave {mib}");
    }
    if let Ok(p) = percent(text) {
        assert!(p.is_finite() && p >= 0.0, "{text:?} gave {p}");
    }
    // One argument per line, after the program's name.
    let argv = std::iter::once("memtrace").chain(text.split('\n'));
    if let Err(error) = cli::parse(argv) {
        let line = cli::one_line(&error);
        assert!(!line.contains('\n'), "{line:?}");
    }
});
