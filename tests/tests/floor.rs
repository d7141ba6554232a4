//! The floors `memtrace bench` holds memtrace's cost against must do what they claim: time
//! every fault the loop takes (the timed floor), and also only in the thread that began it
//! (the attributed floor), or the multiples read against them mean nothing.
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use memtrace_tests::{StderrLines, memtrace_bin, require_root, vmstat, wait_child};

/// What a floor prints when it stops.
#[derive(serde::Deserialize)]
struct Timed {
    faults: u64,
    ns: u64,
}

/// What the churn loop prints.
#[derive(serde::Deserialize)]
struct Churn {
    /// The faults of its timed loop.
    faults: u64,
}

/// A floor attached until dropped (killed) or stopped.
struct Floor(Child);

impl Floor {
    fn start(kind: &str) -> (Self, StderrLines) {
        let mut child = Command::new(memtrace_bin())
            .args(["workload", "bench", "floor", "--kind", kind])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the floor");
        let mut lines = StderrLines::follow(&mut child);
        let floor = Self(child);
        lines.wait_for("memtrace: tracing", Duration::from_secs(30), kind);
        (floor, lines)
    }

    /// SIGINT, then what it timed.
    fn stop(mut self) -> Timed {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        let status = wait_child(&mut self.0, Duration::from_secs(30), "the floor");
        assert!(status.success(), "the floor failed: {status}");
        let mut out = String::new();
        std::io::Read::read_to_string(self.0.stdout.as_mut().expect("stdout"), &mut out)
            .expect("read the floor's output");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("floor output {out:?}: {e}"))
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the churn loop under floor `kind`: every fault of the loop is timed, and no more
/// faults than the machine took while the floor was attached.
fn assert_floor_times_the_loop(kind: &str) {
    require_root();
    let before = vmstat("pgfault");
    let (floor, _stderr) = Floor::start(kind);
    let out = Command::new(memtrace_bin())
        .args([
            "workload",
            "bench",
            "churn",
            "--mib",
            "16",
            "--iterations",
            "4",
        ])
        .output()
        .expect("run the churn loop");
    assert!(out.status.success(), "churn failed: {out:?}");
    let churn: Churn = serde_json::from_slice(&out.stdout).expect("churn's JSON");
    let timed = floor.stop();
    let machine = vmstat("pgfault") - before;
    eprintln!(
        "{kind}: timed {} faults ({} ns); the loop took {}, the machine {machine}",
        timed.faults, timed.ns, churn.faults
    );
    assert!(
        churn.faults >= 4 * 4096,
        "the loop took {} faults",
        churn.faults
    );
    assert!(
        timed.faults >= churn.faults,
        "{kind} timed {} faults, fewer than the loop's {}",
        timed.faults,
        churn.faults
    );
    assert!(
        timed.faults <= machine,
        "{kind} timed {} faults, more than the machine's {machine}",
        timed.faults
    );
    assert!(timed.ns > 0, "{kind} timed no time");
}

#[test]
fn the_timed_floor_times_every_fault_of_the_loop() {
    assert_floor_times_the_loop("timed");
}

#[test]
fn the_attributed_floor_times_every_fault_of_the_loop() {
    assert_floor_times_the_loop("attributed");
}
