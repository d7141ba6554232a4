//! `memtrace completions SHELL` (hidden): a shell completion script, generated from the command
//! line's own definition so it never falls behind it.
use std::{io::Write, process::ExitCode};

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use memtrace::Error;

use super::{Cli, stdio};

/// Options of `memtrace completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// Prints the script, e.g. `memtrace completions bash > /etc/bash_completion.d/memtrace`.
pub fn run(args: CompletionsArgs) -> Result<ExitCode, Error> {
    let script = script(args.shell);
    stdio::report_stdout()
        .and_then(|mut out| out.write_all(&script).and_then(|()| out.flush()))
        .map_err(|e| Error::io("the completions are lost: stdout", e))?;
    Ok(ExitCode::SUCCESS)
}

/// The script for `shell`. Built in memory: clap_complete panics on a failed write, and stdout
/// may be a closed pipe.
fn script(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "memtrace", &mut script);
    script
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn bash_completes_the_subcommands_and_their_options() {
        let bash = String::from_utf8(script(Shell::Bash)).expect("UTF-8");
        for word in [
            "record", "report", "demo", "bench", "--hlog", "--json", "--pid",
        ] {
            assert!(bash.contains(word), "{word} missing");
        }
        assert!(bash.contains("complete -F _memtrace"), "not a bash script");
    }

    #[test]
    fn every_shell_gets_a_script_naming_memtrace() {
        for shell in Shell::value_variants() {
            let text = String::from_utf8(script(*shell)).expect("UTF-8");
            assert!(
                text.contains("memtrace") && text.contains("record"),
                "{shell}"
            );
        }
        let names: Vec<String> = Shell::value_variants()
            .iter()
            .map(Shell::to_string)
            .collect();
        assert_eq!(names, ["bash", "elvish", "fish", "powershell", "zsh"]);
    }
}
