//! `memtrace diff A B`: two recordings side by side, each figure judged against both runs'
//! interval-to-interval noise.
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Args, ValueEnum};
use memtrace::{
    Error,
    model::{
        Model,
        diff::{
            Run, compare,
            series::{MatchBy, Series},
        },
    },
    recording::{Frame, Reader},
    report::diff,
};

use super::stdio;

/// Options of `memtrace diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first recording (A, the baseline).
    #[arg(value_name = "A")]
    a: PathBuf,
    /// The second recording (B), compared against A.
    #[arg(value_name = "B")]
    b: PathBuf,
    /// Write the comparison as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Match processes of the two runs by command name or by pid.
    #[arg(long = "match", value_enum, default_value_t = Match::Comm)]
    match_by: Match,
    /// Number of processes in the table.
    #[arg(long, default_value_t = 20)]
    top: usize,
}

/// `--match`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Match {
    Comm,
    Pid,
}

/// Reads both recordings, compares them and prints the comparison.
pub fn run(args: DiffArgs) -> Result<ExitCode, Error> {
    let match_by = match args.match_by {
        Match::Comm => MatchBy::Comm,
        Match::Pid => MatchBy::Pid,
    };
    // Both files are read before anything is printed: a bad B is refused on its own line.
    let (model_a, series_a, problem_a) = read(&args.a, match_by)?;
    let (model_b, series_b, problem_b) = read(&args.b, match_by)?;
    let run = |path: &Path, model, series, problem: Option<String>| Run {
        path: path.display().to_string(),
        model,
        series,
        problem,
    };
    let diff = compare(
        &run(&args.a, &model_a, &series_a, problem_a),
        &run(&args.b, &model_b, &series_b, problem_b),
        match_by,
    );
    let written = stdio::report_stdout().and_then(|mut out| {
        if args.json {
            diff::write_json(&diff, &mut out)?;
        } else {
            diff::write_text(&diff, args.top, &mut out)?;
        }
        out.flush()
    });
    written.map_err(|e| Error::io("the comparison is lost: stdout", e))?;
    Ok(ExitCode::SUCCESS)
}

/// Folds a recording into its model and its per-interval series in one pass. A file that
/// ends early is said in one line on stderr and compared over its complete intervals.
fn read(path: &Path, match_by: MatchBy) -> Result<(Model, Series, Option<String>), Error> {
    let mut reader = Reader::open(path)?;
    let mut model = Model::new(reader.header.clone());
    let mut series = Series::new(match_by);
    let mut intervals = 0u64;
    while let Some(frame) = reader.next_frame() {
        match frame {
            Frame::Interval(sample) => {
                intervals += 1;
                model.apply(&sample);
                series.apply(&sample);
            }
            Frame::End(end) => model.finish(&end),
        }
    }
    let problem = reader.problem().map(ToString::to_string);
    if let Some(problem) = &problem {
        errln!(
            "memtrace: {}: {problem}; compared over its {intervals} complete intervals",
            path.display()
        );
    }
    Ok((model, series, problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's recording kept by the test suite (docs/recording-format.md).
    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-v1.mtr")
    }

    /// A file of this test in the temp dir, removed on drop (also when an assertion fails).
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(name: &str, bytes: &[u8]) -> Self {
            let name = format!("memtrace-diff-{}-{name}", std::process::id());
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, bytes).expect("write a temp file");
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_recording_is_read_whole_and_a_cut_one_up_to_its_last_complete_interval() {
        let (model, series, problem) = read(&fixture(), MatchBy::Comm).expect("the fixture");
        assert_eq!(problem, None);
        let intervals = series.weights.intervals;
        assert_eq!(intervals, model.timeline.intervals().len() as u64);
        assert!(intervals >= 2, "{intervals}");
        let bytes = std::fs::read(fixture()).expect("read the fixture");
        // The end frame and a little of the last interval's go.
        let cut = TempFile::with("cut.mtr", &bytes[..bytes.len() - 400]);
        let (model, series, problem) = read(&cut.0, MatchBy::Comm).expect("a cut recording");
        let problem = problem.expect("the cut is said");
        assert!(problem.contains("cut short"), "{problem}");
        assert_eq!(series.weights.intervals, intervals - 1);
        assert_eq!(model.end, None);
    }

    #[test]
    fn missing_empty_and_foreign_files_are_refused() {
        let missing = Path::new("/nonexistent/a.mtr");
        let empty = TempFile::with("empty.mtr", b"");
        let foreign = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let cases = [
            (missing, "/nonexistent/a.mtr: No such file"),
            (empty.0.as_path(), ": the file is empty"),
            (foreign.as_path(), ": not a memtrace recording"),
        ];
        for (path, expected) in cases {
            let error = read(path, MatchBy::Comm).err();
            let error = error.unwrap_or_else(|| panic!("{} was read", path.display()));
            assert_eq!(error.exit_code(), 2, "{error}");
            let line = error.to_string();
            assert!(line.contains(expected) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn match_defaults_to_the_command_name() {
        let parse = |args: &[&str]| {
            let argv = ["memtrace", "diff", "a.mtr", "b.mtr"].iter().chain(args);
            super::super::parse(argv.copied())
        };
        let cli = parse(&[]).expect("parses");
        assert!(format!("{cli:?}").contains("match_by: Comm"), "{cli:?}");
        let cli = parse(&["--match", "pid", "--json", "--top", "3"]).expect("parses");
        let shown = format!("{cli:?}");
        assert!(
            shown.contains("match_by: Pid") && shown.contains("json: true"),
            "{shown}"
        );
        let error = parse(&["--match", "name"]).expect_err("only comm or pid");
        let line = super::super::one_line(&error);
        assert!(
            line.starts_with("invalid value 'name' for '--match <MATCH_BY>'"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
