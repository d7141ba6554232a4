//! The only layer that touches the live machine: loads and attaches the kernel programs, drains
//! their ring buffers (`decode` checks every record), reads /proc, cgroupfs, BTF and the kernel
//! log, and turns all of it into samples (`interval`), one per interval (`session`).
pub mod btf;
pub mod caps;
pub mod cgroups;
pub mod decode;
pub mod fault_stacks;
pub mod faults;
pub mod files;
pub mod filter;
pub mod floor;
pub mod growth;
pub mod host;
pub mod interval;
pub mod kernel;
pub mod kmsg;
pub mod kswapd;
pub mod loader;
pub mod machine;
pub mod offsets;
pub mod oom;
pub mod probes;
pub mod processes;
pub mod procfs;
pub mod session;
pub mod stack;
pub mod taskstats;
pub mod zones;
