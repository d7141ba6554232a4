//! Counts what every `cargo test` run passed and failed, so `cargo xtask test` can close with
//! one summary line over all of them (cargo prints one per test binary, the last often a
//! doc-test run of 0 tests, which reads as if nothing ran).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, Result};

use crate::util::{check, display};

/// Tests counted so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Tally {
    /// Adds a `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line; other lines are ignored.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim_start().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }

    /// The closing line.
    pub fn summary(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        )
    }
}

/// Runs a `cargo test` command, echoing its stdout and counting its results into `tally`.
pub fn run_counted(command: &mut Command, tally: &mut Tally) -> Result<()> {
    let shown = display(command);
    println!("+ {shown}");
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            tally.add_line(&line);
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{shown}`"))?;
    check(shown, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_result_lines_and_ignores_the_rest() {
        let mut tally = Tally::default();
        tally.add_line("test result: ok. 137 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.76s");
        tally.add_line(
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        tally.add_line("test foo ... ok");
        tally.add_line("running 3 tests");
        assert_eq!(
            tally,
            Tally {
                passed: 139,
                failed: 1,
                ignored: 1
            }
        );
        assert_eq!(tally.summary(), "tests: 139 passed, 1 failed, 1 skipped");
    }
}
