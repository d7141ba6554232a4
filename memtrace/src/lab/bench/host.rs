//! The machine a benchmark ran on, for the header printed above the table.
use std::{
    io::{self, Write},
    time::{SystemTime, UNIX_EPOCH},
};

/// Facts about the machine and the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// When the run started, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// `uname -r`.
    pub kernel: String,
    pub cpu_model: String,
    /// Online CPUs.
    pub cores: usize,
    pub ram_kib: u64,
    /// The command line as it was run.
    pub command: String,
}

impl Host {
    /// Reads the machine's facts now; unknown ones read "unknown" (a header is no reason to fail).
    pub fn read(command: String) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            date: utc_date(secs),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu_model: cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            ram_kib: mem_total_kib(&read("/proc/meminfo")).unwrap_or(0),
            command,
        }
    }

    /// Writes the header: one fact a line, markdown-friendly.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "# memtrace bench")?;
        writeln!(out)?;
        writeln!(out, "- date: {}", self.date)?;
        writeln!(out, "- kernel: {}", self.kernel)?;
        writeln!(
            out,
            "- CPU: {} ({} cores online)",
            self.cpu_model, self.cores
        )?;
        writeln!(
            out,
            "- RAM: {:.1} GiB",
            self.ram_kib as f64 / (1024.0 * 1024.0)
        )?;
        writeln!(out, "- command: `{}`", self.command)
    }
}

/// The first `model name` of /proc/cpuinfo.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// `MemTotal` of /proc/meminfo, in KiB.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian calendar).
pub fn utc_date(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shifted so that eras of 400 years start on 0000-03-01 and leap days come last.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31 23:59 UTC");
    }

    #[test]
    fn cpuinfo_and_meminfo() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) \
                       Processor\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        let meminfo = "MemTotal:       24590000 kB\nMemFree:        1 kB\n";
        assert_eq!(mem_total_kib(meminfo), Some(24_590_000));
        assert_eq!(mem_total_kib("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn header_lines() {
        let host = Host {
            date: "2025-01-02 03:04 UTC".into(),
            kernel: "6.18.0".into(),
            cpu_model: "cpu".into(),
            cores: 2,
            ram_kib: 24 * 1024 * 1024,
            command: "memtrace bench".into(),
        };
        let mut out = Vec::new();
        host.write(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("- kernel: 6.18.0\n"));
        assert!(text.contains("- CPU: cpu (2 cores online)\n"));
        assert!(text.contains("- RAM: 24.0 GiB\n"));
        assert!(text.contains("- command: `memtrace bench`\n"));
    }
}
