//! Samples the machine's own memory counters once per interval: PSI, /proc/meminfo and
//! /proc/vmstat. A missing file (no PSI) leaves its fields empty rather than failing.
use crate::{model::machine::MachineSample, workload::parse_vmstat};

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
    sample.allocstall = vmstat
        .lines()
        .filter(|line| line.starts_with("allocstall_"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
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

/// The `total=` of the `some` or `full` line of a PSI file.
pub fn psi_total(text: &str, line: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(line))?
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// A `Key:   123 kB` value of /proc/meminfo.
pub fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        (k == key)
            .then(|| rest.split_whitespace().next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_and_meminfo_parse() {
        let psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n";
        assert_eq!(psi_total(psi, "some"), Some(1234));
        assert_eq!(psi_total(psi, "full"), Some(56));
        assert_eq!(psi_total("", "some"), None);
        let meminfo = "MemTotal:       24000000 kB\nMemFree:        20000000 kB\nSwapFree:              0 kB\n";
        assert_eq!(meminfo_kb(meminfo, "MemFree"), Some(20_000_000));
        assert_eq!(meminfo_kb(meminfo, "Mem"), None);
    }

    #[test]
    fn a_live_sample_has_a_clock_and_memory() {
        let s = sample();
        assert!(s.mono_ns > 0 && s.mem_available_kb > 0);
    }
}
