//! The demo's and the benchmark's equipment: sandboxes (memory cgroup, temporary swap),
//! workloads with known effects, scenarios and the benchmark itself. The core layers
//! (collect → samples → model → report) never import it; only the CLI and the tests do.
pub mod bench;
pub mod sandbox;
pub mod scenario;
pub mod workload;
