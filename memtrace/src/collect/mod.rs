pub mod btf;
pub mod faults;
pub mod filter;
pub mod kernel;
pub mod loader;
pub mod machine;
pub mod session;
