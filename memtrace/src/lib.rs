//! memtrace: per-process latency of page faults, reclaim stalls, swapping and OOM kills,
//! traced with eBPF.
//!
//! Data flows one way: `collect` (the only code that touches the live machine) makes `samples`
//! (plain data, what a `recording` keeps), the `model` is a pure fold of samples, and `report`
//! renders it. `lab` holds the demo's and benchmark's equipment; the core never imports it.
//! `args` holds the pure parsers of command-line values, shared by the CLI and its fuzzer.
pub mod args;
pub mod collect;
pub mod error;
pub mod lab;
pub mod metrics;
pub mod model;
pub mod recording;
pub mod report;
pub mod samples;

pub use error::Error;
