//! What every subcommand needs: where the workspace is, the PATH children see, running children.

use std::{
    env,
    ffi::{OsStr, OsString},
    fmt,
    os::unix::process::{CommandExt as _, ExitStatusExt as _},
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    sync::LazyLock,
};

use anyhow::{Context as _, Result};

/// A child process that ran and failed; `main` exits with its code so CI sees the real failure.
#[derive(Debug)]
pub struct ChildFailed {
    /// The command line, as printed before it ran.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
}

impl ChildFailed {
    /// The exit code to hand on: the child's own, or 128 + signal like a shell.
    pub fn exit_code(&self) -> u8 {
        let code = self
            .status
            .code()
            .or_else(|| self.status.signal().map(|signal| 128 + signal));
        code.and_then(|code| u8::try_from(code).ok())
            .filter(|&code| code != 0)
            .unwrap_or(1)
    }
}

impl fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed ({})", self.command, self.status)
    }
}

impl std::error::Error for ChildFailed {}

/// Set to `1`, memtrace's build.rs embeds no eBPF programs (aya-build skips building them).
pub const AYA_BUILD_SKIP: &str = "AYA_BUILD_SKIP";

/// The workspace root, fixed at compile time so `cargo xtask` works from any subdirectory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

/// Where `cargo install` puts binaries: `$CARGO_HOME/bin`, else `~/.cargo/bin`.
pub fn cargo_bin_dir() -> Option<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|cargo_home| cargo_home.join("bin"))
}

/// PATH for children, with the cargo bin dir first: a fresh shell (CI, sudo) often lacks it,
/// and aya-build must find bpf-linker there.
pub static CHILD_PATH: LazyLock<OsString> = LazyLock::new(|| {
    let inherited = env::var_os("PATH").unwrap_or_default();
    let dirs = cargo_bin_dir()
        .into_iter()
        .chain(env::split_paths(&inherited));
    // Only fails on a dir containing ':', which no cargo home has; keep the inherited PATH then.
    env::join_paths(dirs).unwrap_or(inherited)
});

/// A command for `program`, looked up on [`CHILD_PATH`] and run with it.
pub fn cmd(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env("PATH", &*CHILD_PATH);
    command
}

/// A cargo command run at the workspace root, using the cargo that runs xtask when known.
pub fn cargo() -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = cmd(program);
    command.current_dir(workspace_root());
    command
}

/// Whether `program` can be found on [`CHILD_PATH`].
pub fn find_program(program: &str) -> Option<PathBuf> {
    let cwd = env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    which::which_in(program, Some(&*CHILD_PATH), cwd).ok()
}

/// Prints a section header so CI logs show which step failed.
pub fn step(name: &str) {
    println!("\n==> {name}");
}

/// Shell-like rendering of a command, with the variables it sets (except PATH).
pub fn display(command: &Command) -> String {
    let envs = command
        .get_envs()
        .filter(|(key, _)| *key != "PATH")
        .filter_map(|(key, value)| Some((key, value?)))
        .map(|(key, value)| format!("{}={}", key.display(), value.display()));
    let program = Path::new(command.get_program());
    // Show `cargo`, not the absolute toolchain path taken from $CARGO.
    let program = program.file_name().unwrap_or(program.as_os_str());
    let words = std::iter::once(program)
        .chain(command.get_args())
        .map(|word| word.display().to_string());
    envs.chain(words).collect::<Vec<_>>().join(" ")
}

/// Runs `command` with inherited stdio; a non-zero exit becomes a [`ChildFailed`].
pub fn run(command: &mut Command) -> Result<()> {
    let shown = display(command);
    println!("+ {shown}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    check(shown, status)
}

/// A non-zero exit of the command shown as `shown` becomes a [`ChildFailed`].
pub fn check(shown: String, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(ChildFailed {
            command: shown,
            status,
        }
        .into())
    }
}

/// Runs `command` quietly and returns its trimmed stdout, or `None` if it is missing or fails.
pub fn probe(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Replaces xtask with `command`, so its exit code and signals reach the caller untouched.
pub fn exec(command: &mut Command) -> Result<()> {
    let shown = display(command);
    println!("+ {shown}");
    // `exec` only returns on failure.
    let err = command.exec();
    Err(err).with_context(|| format!("could not start `{shown}`"))
}

/// Whether xtask runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
