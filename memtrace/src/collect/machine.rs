//! Samples the machine's own memory counters once per interval: PSI, /proc/meminfo and
//! /proc/vmstat. A missing file (no PSI) leaves its fields empty rather than failing.
//! The parsers are in `procfs`.
use super::procfs::{meminfo_kb, parse_vmstat, psi_total, vmstat_sum};
use crate::samples::machine::MachineSample;

/// Reads every counter now.
pub fn sample() -> MachineSample {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let mut sample = MachineSample {
        mono_ns: monotonic_ns(),
        ..MachineSample::default()
    };
    let psi = read("/proc/pressure/memory");
    sample.psi_some_us = psi_total(&psi, "some");
    sample.psi_full_us = psi_total(&psi, "full");
    let meminfo = read("/proc/meminfo");
    let kb = |key: &str| meminfo_kb(&meminfo, key).unwrap_or(0);
    sample.mem_free_kb = kb("MemFree");
    sample.mem_available_kb = kb("MemAvailable");
    sample.swap_total_kb = kb("SwapTotal");
    sample.swap_free_kb = kb("SwapFree");
    let vmstat = read("/proc/vmstat");
    let counter = |key: &str| parse_vmstat(&vmstat, key).unwrap_or(0);
    sample.pswpin = counter("pswpin");
    sample.pswpout = counter("pswpout");
    sample.allocstall = vmstat_sum(&vmstat, "allocstall_");
    sample
}

/// CLOCK_MONOTONIC in ns, the clock of `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_sample_has_a_clock_and_memory() {
        let s = sample();
        assert!(s.mono_ns > 0 && s.mem_available_kb > 0);
    }
}
