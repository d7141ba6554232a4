//! The diff renderers on the hand-made runs of `model::diff::tests`: `db` under the same steady
//! load twice, and under a tighter limit (swap-ins in every third interval, four times the
//! reclaim) in a memcg of 40 MiB instead of 64 MiB.
use super::*;
use crate::{
    model::diff::{
        Diff,
        tests::{one_interval_diff, steady_diff, tight_diff},
    },
    report::fixture::{render, schema_errors, words_of},
};

/// docs/diff.schema.json.
const SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/diff.schema.json"
));

fn text(diff: &Diff, top: usize) -> String {
    render(|out| write_text(diff, top, out))
}

/// The line that follows the first line starting with `prefix`, and the one after it.
fn next_lines<'a>(text: &'a str, prefix: &str) -> [Vec<&'a str>; 2] {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"));
    let words = |i: usize| {
        lines
            .get(i)
            .map_or(Vec::new(), |l| l.split_whitespace().collect())
    };
    [words(at + 1), words(at + 2)]
}

/// Where `word` ends on `line`, in characters (µ and Δ are two bytes).
fn end_of(line: &str, word: &str) -> usize {
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    line[..at].chars().count() + word.chars().count()
}

#[test]
fn the_headline_counts_differences_and_settings() {
    let tight = text(&tight_diff(), 20);
    let lines: Vec<&str> = tight.lines().take(4).collect();
    assert_eq!(
        lines,
        [
            "A: a.mtr: traced every process for 10.00 s, 10 intervals of 1.00s",
            "B: b.mtr: traced every process for 10.00 s, 10 intervals of 1.00s",
            "",
            "B against A: 8 figures differ beyond noise (marked *); 1 setting differs (marked *)",
        ]
    );
    assert!(
        text(&steady_diff(), 20).contains("\nB against A: no difference beyond noise\n"),
        "{}",
        text(&steady_diff(), 20)
    );
    let mut one = steady_diff();
    (one.differing_figures, one.differing_settings) = (1, 2);
    one.b.problem = Some("the file is cut short".into());
    let one = text(&one, 20);
    assert!(
        one.contains(
            "\nB against A: 1 figure differs beyond noise (marked *); 2 settings differ (marked *)\n"
        ),
        "{one}"
    );
    assert!(one.contains(", 10 complete intervals of 1.00s\n"), "{one}");
}

#[test]
fn a_row_is_three_lines_with_a_mark_on_each_figure_beyond_noise() {
    let text = text(&tight_diff(), 20);
    assert_eq!(
        words_of(&text, "* swap_in"),
        ["*", "swap_in", "A", "0", "0", "0", "-", "-", "-", "-"]
    );
    let [b, change] = next_lines(&text, "* swap_in");
    assert_eq!(
        b,
        [
            "B", "1.20k", "120", "0.60%", "50.0µs", "50.0µs", "50.0µs", "50.0µs"
        ]
    );
    assert_eq!(change, ["Δ", "new", "new*", "new*", "-", "-", "-", "-"]);
    let [_, change] = next_lines(&text, "* memcg_reclaim");
    assert_eq!(
        change,
        ["Δ", "+300%", "+300%*", "+300%*", "0%", "0%", "0%", "0%"]
    );
    // The process is marked, its unchanged row is not.
    assert_eq!(
        words_of(&text, "* db"),
        ["*", "db", "(processes:", "A", "1,", "B", "1)"]
    );
    assert_eq!(words_of(&text, "minor")[..3], ["minor", "A", "1.00k"]);
    // Every figure sits under its heading.
    let heading = text
        .lines()
        .find(|l| l.contains("RATE/s"))
        .expect("headings");
    let b_line = text
        .lines()
        .find(|l| l.contains("1.20k"))
        .expect("B's swap-ins");
    assert_eq!(end_of(heading, "RATE/s"), end_of(b_line, "120"));
    assert_eq!(end_of(heading, "MAX"), b_line.chars().count());
}

#[test]
fn the_memcg_pair_and_a_differing_limit_are_marked() {
    let tight = text(&tight_diff(), 20);
    assert!(
        tight.contains(
            "\n  memcg A /sys/fs/cgroup/memory/box-4242-0\n        B /sys/fs/cgroup/memory/box-4242-1\n* limit A 64.0M, B 40.0M\n  * in "
        ),
        "{tight}"
    );
    assert_eq!(words_of(&tight, "PAGES"), ["PAGES", "PAGES/s"], "{tight}");
    assert!(tight.contains("PAGES/s\n  all\n  * in "), "{tight}");
    let steady = text(&steady_diff(), 20);
    assert!(
        steady.contains("\n  memcg /sys/fs/cgroup/memory/box-4242-0\n  limit A 64.0M, B 64.0M\n"),
        "{steady}"
    );
    let marked = steady
        .lines()
        .filter(|l| !l.contains("(* = beyond both runs' noise"))
        .any(|l| l.contains('*'));
    assert!(!marked, "nothing marked:\n{steady}");
}

#[test]
fn settings_that_differ_are_marked() {
    let mut diff = steady_diff();
    let swappiness = &mut diff.settings[1];
    (swappiness.b, swappiness.differs) = (Some("10".into()), true);
    let text = text(&diff, 20);
    assert_eq!(
        words_of(&text, "* swappiness"),
        ["*", "swappiness", "60", "10"]
    );
    assert_eq!(
        words_of(&text, "kernel"),
        ["kernel", "6.8.0-test", "6.8.0-test"]
    );
    assert_eq!(
        words_of(&text, "zone_reclaim_mode"),
        ["zone_reclaim_mode", "-", "-"]
    );
}

#[test]
fn top_cuts_processes_and_counts_the_hidden_differences() {
    let cut = text(&tight_diff(), 0);
    assert!(
        cut.contains("\n... and 1 more (of which 1 differ; see --top, or --json for all)\n"),
        "{cut}"
    );
    assert!(words_of(&cut, "* db").is_empty(), "{cut}");
    let mut none = steady_diff();
    none.processes.clear();
    assert!(text(&none, 20).contains("):\n  none in either run\n"));
}

#[test]
fn names_from_the_machine_are_escaped() {
    let mut diff = tight_diff();
    diff.processes[0].key = "evil\x1b[31m\nrow".into();
    diff.swap.memcgs[0].path_b = Some("/box\u{202e}".into());
    let text = text(&diff, 20);
    assert!(text.contains("* evil\\x1b[31m\\nrow (processes"), "{text}");
    assert!(text.contains("        B /box\\u{202e}\n"), "{text}");
    assert!(!text.contains('\x1b'));
}

#[test]
fn the_json_parses_back_and_writes_the_same_bytes() {
    let json = render(|out| write_json(&tight_diff(), out));
    let parsed: Diff = serde_json::from_str(&json).expect("the JSON parses as a Diff");
    assert_eq!(render(|out| write_json(&parsed, out)), json);
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(value["schema"], "memtrace.diff/1");
    assert_eq!(value["match_by"], "comm");
    assert_eq!(value["differing_figures"], 8);
    let swap_in = &value["processes"][0]["rows"][1];
    assert_eq!(swap_in["kind"], "swap_in");
    assert_eq!(
        (swap_in["count_a"].as_u64(), swap_in["count_b"].as_u64()),
        (Some(0), Some(1200))
    );
    let rate = &swap_in["figures"][0];
    assert_eq!(rate["figure"], "rate_per_s");
    assert_eq!(rate["verdict"], "differs");
    assert_eq!(
        (rate["a"].as_f64(), rate["b"].as_f64()),
        (Some(0.0), Some(120.0))
    );
    assert!(rate["change"].is_null());
    assert_eq!(rate["band_a"], serde_json::json!({"lo": 0.0, "hi": 0.0}));
    assert!(
        rate["band_b"]["lo"]
            .as_f64()
            .is_some_and(|lo| lo > 0.0 && lo < 120.0)
    );
    assert_eq!(swap_in["figures"][2]["verdict"], "too_few");
    let memcg = &value["swap"]["memcgs"][0];
    assert_eq!(memcg["limit_differs"], true);
    assert_eq!(memcg["memory_limit_b_bytes"], 40 << 20);
    assert!(value["a"]["problem"].is_null());
    assert!(json.ends_with("}\n"));
}

fn json_of(diff: &Diff) -> serde_json::Value {
    let json = render(|out| write_json(diff, out));
    serde_json::from_str(&json).expect("valid JSON")
}

#[test]
fn the_json_of_every_fixture_matches_the_schema() {
    // What else may be null or differ: a setting one run lacks, a file cut short, a memcg
    // without a limit; and pids matched.
    let mut rest = tight_diff();
    rest.match_by = MatchBy::Pid;
    let thp = &mut rest.settings[6];
    (thp.b, thp.differs) = (None, true);
    rest.b.problem = Some("the file is cut short".into());
    rest.swap.memcgs[0].memory_limit_b_bytes = None;
    let one = json_of(&one_interval_diff());
    // The fixtures hold every null the schema allows.
    let memcg = &one["swap"]["memcgs"][0];
    assert!(memcg["path_a"].is_null() && memcg["memory_limit_a_bytes"].is_null());
    let rate = &one["swap"]["total"][0]["figures"][0];
    assert!(rate["band_a"].is_null() && rate["band_b"].is_null());
    for (name, value) in [
        ("steady", json_of(&steady_diff())),
        ("tight", json_of(&tight_diff())),
        ("one interval", one),
        ("the rest", json_of(&rest)),
    ] {
        let errors = schema_errors(SCHEMA, &value);
        assert!(errors.is_empty(), "{name}:\n{}", errors.join("\n"));
    }
}

/// Every error of `value`, which must be exactly the `expected` (beginnings of messages).
fn assert_errors(value: &serde_json::Value, expected: &[&str]) {
    let errors = schema_errors(SCHEMA, value);
    for needle in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(needle)),
            "{needle} not in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expected.len(), "{}", errors.join("\n"));
}

#[test]
fn the_schema_refuses_an_unknown_field_a_missing_one_and_misplaced_nulls() {
    let mut value = json_of(&tight_diff());
    value["processes"][0]["rows"][0]["figures"][0]["p42_ns"] = 1.into();
    let memcg = value["swap"]["memcgs"][0]
        .as_object_mut()
        .expect("an object");
    memcg.remove("limit_differs");
    assert_errors(
        &value,
        &[
            "/processes/0/rows/0/figures/0: Additional properties are not allowed ('p42_ns'",
            "/swap/memcgs/0: \"limit_differs\" is a required property",
        ],
    );
    // A rate is always a number; a memcg is in one run at least (here in B only).
    let mut value = json_of(&one_interval_diff());
    value["processes"][0]["rows"][0]["figures"][0]["a"] = serde_json::Value::Null;
    let memcg = &mut value["swap"]["memcgs"][0];
    memcg["path_b"] = serde_json::Value::Null;
    memcg["memory_limit_b_bytes"] = serde_json::Value::Null;
    assert_errors(
        &value,
        &[
            "/processes/0/rows/0/figures/0/a: null is not of type \"number\"",
            "/swap/memcgs/0: {\"properties\":{\"path_a\":{\"type\":\"null\"},\"path_b\":{\"type\":\"null\"}}} is not allowed",
        ],
    );
}

#[test]
fn changes_read_as_a_percentage_a_ratio_or_new() {
    assert_eq!(change(100.0, 135.0, false), "+35%");
    assert_eq!(change(100.0, 88.0, false), "-12%");
    assert_eq!(change(5.0, 0.0, true), "-100%*");
    assert_eq!(change(10.0, 140.0, true), "×14*");
    assert_eq!(change(0.0, 5.0, false), "new");
    assert_eq!(change(7.0, 7.0, false), "0%");
    assert_eq!(format_value(Figure::RatePerS, 0.0), "0");
    assert_eq!(format_value(Figure::RatePerS, 0.54), "0.5");
    assert_eq!(format_value(Figure::RatePerS, 12_345.4), "12.3k");
    assert_eq!(format_value(Figure::Share, 0.006), "0.60%");
    assert_eq!(format_value(Figure::Share, 1.51), "151.0%");
    assert_eq!(format_value(Figure::P99Ns, 1_500.0), "1.50µs");
}
