//! `memtrace report --hlog FILE`: the file side of the HdrHistogram interval log
//! (`memtrace::report::hlog` renders it).
use std::path::Path;

pub use memtrace::report::hlog::Selection;
use memtrace::{
    Error,
    recording::Reader,
    report::hlog::{self, Names},
};

use super::output;

/// Refuses, before the recording is read, a log that could not be written: `-` (stdout carries
/// the report's tables), a directory, a path that cannot be created.
pub fn check_path(path: &Path) -> Result<(), Error> {
    if path == Path::new("-") {
        return Err(Error::InvalidArgument {
            what: "--hlog",
            value: "-".into(),
            reason: "the report's tables go to stdout; name a file".into(),
        });
    }
    // The same check as `--json`'s: it creates nothing that stays, and opens no FIFO.
    output::check_json_path(Some(path))
}

/// Writes the interval log of `recording` to `path`. The recording is read twice: once for the
/// names that tag each process, once for the log (see [`Names`]).
pub fn write(recording: &Path, path: &Path, selection: &Selection) -> Result<(), Error> {
    let mut reader = Reader::open(recording)?;
    let header = reader.header.clone();
    let names = Names::of(&header, reader.intervals(), selection);
    let mut reader = Reader::open(recording)?;
    output::write_file(path, |out| {
        hlog::write(&header, &names, reader.intervals(), selection, out)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn demo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-v1.mtr")
    }

    #[test]
    fn unwritable_paths_are_refused_before_reading() {
        let refused = |path: &str| {
            let error = check_path(Path::new(path)).expect_err(path);
            assert_eq!(error.exit_code(), 2, "{path}");
            let line = error.to_string();
            assert!(!line.contains('\n'), "{line}");
            line
        };
        assert!(refused("-").contains("name a file"));
        assert!(refused("/").contains("directory"));
        assert!(refused("/nonexistent/dir/out.hlog").starts_with("cannot write /nonexistent/"));
        assert!(check_path(Path::new("/dev/null")).is_ok());
    }

    #[test]
    fn the_log_is_written_whole_and_nothing_else_stays() {
        let dir = std::env::temp_dir().join(format!("memtrace-cli-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("run.hlog");
        check_path(&path).expect("writable");
        assert!(!path.exists(), "the check leaves no file");
        write(&demo(), &path, &Selection::default()).expect("written");
        let text = std::fs::read_to_string(&path).expect("read back");
        let entries = text.lines().filter(|l| l.starts_with("Tag=")).count();
        assert!(entries > 4, "{entries} entries");
        let files: Vec<_> = std::fs::read_dir(&dir).expect("list").collect();
        assert_eq!(files.len(), 1, "no .partial left");
        let missing = write(Path::new("/nonexistent.mtr"), &path, &Selection::default());
        assert_eq!(missing.expect_err("no recording").exit_code(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
