//! `--cgroup` traces exactly the processes of that cgroup, in the v1 memory hierarchy and in v2.
use std::path::{Path, PathBuf};

use memtrace::{
    lab::sandbox::{MemcgLimits, Sandbox},
    lab::workload::faults::FaultOutcome,
};
use memtrace_tests::{Recorder, Workload, assert_within, require_root};

const MIB: u64 = 1 << 20;

/// Runs one workload inside `cgroup` and one outside, traces `--cgroup`, and checks that only
/// the inside one is reported, with the kernel's count of its faults.
fn only_the_cgroup_is_traced(cgroup: &Path, add: &dyn Fn(u32)) {
    let args = [
        "faults",
        "--file-mib",
        "0",
        "--anon-mib",
        "32",
        "--swap-mib",
        "0",
    ];
    let mut inside = Workload::spawn(&args);
    let mut outside = Workload::spawn(&args);
    add(inside.pid);
    let path = cgroup.to_str().expect("utf-8 path");
    let recorder = Recorder::start(&["--cgroup", path, "--duration", "3"]);
    inside.go();
    outside.go();
    let inside_pid = inside.pid;
    let outcome: FaultOutcome = inside.finish();
    let _: FaultOutcome = outside.finish();
    let report = recorder.finish();
    let pids: Vec<u32> = report.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![inside_pid], "exactly the cgroup's process");
    let minor = report.processes[0].classes.minor.latency.count;
    assert_within("minor faults", minor, outcome.total.minflt, 2.0);
}

#[test]
fn memory_cgroup_filter() {
    require_root();
    let limits = MemcgLimits {
        memory_bytes: 256 * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, None).expect("sandbox");
    only_the_cgroup_is_traced(sandbox.memcg.path(), &|pid| {
        sandbox.memcg.add_pid(pid).expect("add pid")
    });
}

/// A plain cgroup v2 directory (no controller needed), removed on drop.
struct V2Cgroup(PathBuf);

impl Drop for V2Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn cgroup_v2_filter() {
    require_root();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mount = mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .expect("this kernel test needs a cgroup v2 mount");
    let dir = V2Cgroup(mount.join(format!("memtrace-test-{}", std::process::id())));
    std::fs::create_dir(&dir.0).expect("create a v2 cgroup");
    let procs = dir.0.join("cgroup.procs");
    only_the_cgroup_is_traced(&dir.0, &|pid| {
        std::fs::write(&procs, pid.to_string()).expect("add pid")
    });
}
