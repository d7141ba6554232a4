//! Kernel programs are built as the `memtrace` binary target; this empty library only lets
//! userspace name the crate as a build dependency so cargo rebuilds it on changes.
#![no_std]
