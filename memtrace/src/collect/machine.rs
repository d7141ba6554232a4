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
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer; CLOCK_MONOTONIC and CLOCK_BOOTTIME always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// When a process that started before tracing started, as CLOCK_MONOTONIC ns (from
/// /proc/PID/stat, to the clock tick); `None` when it is gone or unreadable.
pub fn process_start_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = super::procfs::stat_starttime_ticks(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&hz| hz > 0)?;
    let boottime_ns = ticks.saturating_mul(1_000_000_000) / hz;
    // The two clocks differ by the time the machine spent suspended.
    let suspended_ns = clock_ns(libc::CLOCK_BOOTTIME).saturating_sub(monotonic_ns());
    Some(boottime_ns.saturating_sub(suspended_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_started_before_now() {
        let start = process_start_ns(std::process::id()).expect("own start");
        assert!(start > 0 && start <= monotonic_ns());
    }

    #[test]
    fn a_live_sample_has_a_clock_and_memory() {
        let s = sample();
        assert!(s.mono_ns > 0 && s.mem_available_kb > 0);
    }
}
