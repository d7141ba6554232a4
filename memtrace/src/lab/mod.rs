//! The demo's and the benchmark's equipment: sandboxes (memory cgroup, temporary swap),
//! workloads with known effects, scenarios and the benchmark itself. The core layers
//! (collect → samples → model → report) never import it; only the CLI and the tests do.

/// `eprintln!` that cannot panic, for progress lines: when stderr is a closed pipe they are
/// lost, not the run.
macro_rules! progress {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod bench;
pub mod sandbox;
pub mod scenario;
pub mod selfcheck;
pub mod workload;
