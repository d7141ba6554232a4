//! memtrace: per-process latency of page faults (and, as it grows, reclaim stalls, swapping and
//! OOM kills), traced with eBPF.
//!
//! Data flows one way: `collect` loads the kernel programs and drains their ring buffer,
//! `decode` checks and types each record, `model` aggregates, `report` renders.
pub mod bench;
pub mod collect;
pub mod decode;
pub mod error;
pub mod model;
pub mod oom;
pub mod report;
pub mod sandbox;
pub mod workload;

pub use error::Error;
