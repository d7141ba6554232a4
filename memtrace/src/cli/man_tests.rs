//! The manual page is roff that names every visible subcommand, and real formatters read it.
use std::{
    io::Write,
    process::{Command as Process, Stdio},
};

use super::*;

fn text(command: Option<&str>) -> String {
    String::from_utf8(page(command).expect("a page")).expect("UTF-8")
}

#[test]
fn the_page_is_roff_that_lists_the_subcommands() {
    let roff = text(None);
    let first_request = roff
        .lines()
        .find(|line| line.starts_with('.') && !line.starts_with(".ie") && !line.starts_with(".el"))
        .expect("roff requests");
    assert!(
        first_request.starts_with(".TH memtrace 1 "),
        "{first_request}"
    );
    assert!(roff.contains(".SH SUBCOMMANDS"), "{roff}");
    for sub in ["record", "report", "demo", "bench"] {
        assert!(
            roff.contains(&format!("memtrace\\-{sub}(1)")),
            "{sub} missing:\n{roff}"
        );
    }
    for hidden in [
        "memtrace\\-workload",
        "memtrace\\-completions",
        "memtrace\\-man",
    ] {
        assert!(!roff.contains(hidden), "{hidden} is listed:\n{roff}");
    }
}

#[test]
fn a_subcommand_has_a_page_of_its_own() {
    let roff = text(Some("report"));
    assert!(roff.contains(".TH memtrace-report 1 "), "{roff}");
    assert!(roff.contains("\\-\\-hlog"), "{roff}");
    let error = page(Some("workload")).expect_err("hidden");
    assert_eq!(error.exit_code(), 2);
    let message = error.to_string();
    let (_, listed) = message
        .split_once("try one of: ")
        .expect("the commands are listed");
    for name in ["record", "report", "demo", "bench"] {
        assert!(listed.contains(name), "{message}");
    }
    for hidden in ["workload", "completions", "man"] {
        assert!(
            !listed
                .split(", ")
                .any(|n| n.trim_end_matches(')') == hidden),
            "{message}"
        );
    }
}

/// Formats the page with whichever of man and groff is installed (neither is installed for
/// this); says so on stderr when neither is.
#[test]
fn man_or_groff_renders_the_page() {
    let roff = page(None).expect("a page");
    let formatters: [(&str, &[&str]); 2] = [
        ("man", &["-l", "-"]),
        ("groff", &["-man", "-Tutf8", "-P-c", "-P-b", "-P-u"]),
    ];
    let mut rendered = 0;
    for (program, args) in formatters {
        let child = Process::new(program)
            .args(args)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env_remove("MAN_KEEP_FORMATTING")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            continue;
        };
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&roff).expect("feed the page");
        }
        let output = child.wait_with_output().expect("the formatter ends");
        // Some groff versions print `\-` as a Unicode minus or hyphen.
        let shown = String::from_utf8_lossy(&output.stdout).replace(['\u{2212}', '\u{2010}'], "-");
        assert!(
            output.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(shown.contains("memtrace-record(1)"), "{program}:\n{shown}");
        rendered += 1;
    }
    if rendered == 0 {
        eprintln!("NOTE: neither man nor groff is installed: the page was not formatted");
    }
}
