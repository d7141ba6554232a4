//! `memtrace man [COMMAND]` (hidden): the manual page in roff, generated from the command
//! line's own definition: memtrace(1), or memtrace-COMMAND(1) for a subcommand.
use std::{io::Write, process::ExitCode};

use clap::{Args, Command, CommandFactory};
use memtrace::Error;

use super::{Cli, stdio};

/// Options of `memtrace man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand whose page to print (`record`, `report`, ...); none: memtrace(1).
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

/// Prints the page, e.g. `memtrace man | man -l -`.
pub fn run(args: ManArgs) -> Result<ExitCode, Error> {
    let page = page(args.command.as_deref())?;
    stdio::report_stdout()
        .and_then(|mut out| out.write_all(&page).and_then(|()| out.flush()))
        .map_err(|e| Error::io("the manual page is lost: stdout", e))?;
    Ok(ExitCode::SUCCESS)
}

/// The page of memtrace, or of one of its visible subcommands.
fn page(command: Option<&str>) -> Result<Vec<u8>, Error> {
    // Built as clap_mangen builds its pages: subcommands then carry `memtrace-NAME` as their
    // title and `memtrace NAME` in their synopsis.
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let page: Command = match command {
        None => cli,
        Some(name) => cli
            .get_subcommands()
            .find(|sub| sub.get_name() == name && !sub.is_hide_set())
            .cloned()
            .ok_or_else(|| Error::InvalidArgument {
                what: "command",
                value: name.to_string(),
                reason: format!(
                    "memtrace has no such command (try one of: {})",
                    visible(&cli)
                ),
            })?,
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .map_err(|e| Error::io("rendering the manual page", e))?;
    Ok(roff)
}

fn visible(cli: &Command) -> String {
    let names: Vec<&str> = cli
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(Command::get_name)
        .collect();
    names.join(", ")
}

#[cfg(test)]
#[path = "man_tests.rs"]
mod tests;
