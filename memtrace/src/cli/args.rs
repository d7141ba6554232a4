//! Value parsers shared by the subcommands: the pure ones live in the library
//! (`memtrace::args`), where the unit tests and the fuzzer reach them too.
pub use memtrace::args::{duration, offset, percent, ring_mib, size};
