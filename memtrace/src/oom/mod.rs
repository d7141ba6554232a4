//! OOM kills: who was killed, who triggered it, in which domain, with what badness, against
//! which other candidates, and what the kill freed.
//!
//! The flow is memtrace's: the kernel programs (`memtrace-ebpf/src/oom`) send a kill record on
//! their own ring buffer; the session decodes it (`decode::decode_oom`) and `collect` samples its
//! context at once (candidates through a BPF task iterator, stack, cgroup paths, kernel log);
//! `model` computes the picture (`domain` and `badness` are the pure arithmetic); `render`
//! writes the text block; the JSON report carries `model::OomKill` as is.
pub mod badness;
mod build;
pub mod candidates;
pub mod collect;
pub mod domain;
pub mod hooks;
pub mod host;
pub mod kmsg;
pub mod log;
pub mod model;
pub mod offsets;
pub mod render;
pub mod scenario;
pub mod stack;

#[cfg(test)]
mod tests;

pub use collect::{OomCollector, OomSample};
pub use log::OomLog;
pub use model::OomKill;
