//! The report as one JSON document: docs/json-schema.md says what each field means, and
//! docs/report.schema.json (JSON Schema, draft 2020-12) is its machine-readable form, which the
//! tests hold every report to.
use std::io::{self, Write};

use super::Report;

/// Writes the report as pretty JSON followed by a newline.
pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        report::{
            SCHEMA, View,
            fixture::{self, render},
        },
        samples::machine::Thresholds,
    };

    #[test]
    fn the_document_parses_back_and_writes_the_same_bytes() {
        let text = render(|out| write(&fixture::report(), out));
        assert!(
            text.starts_with("{\n  \"schema\": \"memtrace.report/1\",\n"),
            "{text}"
        );
        assert!(text.ends_with("}\n"), "{text}");
        let parsed: Report = serde_json::from_str(&text).expect("the JSON parses as a Report");
        assert_eq!(parsed.schema, SCHEMA);
        assert_eq!(parsed.duration_s, 2.0);
        assert_eq!(
            (parsed.faults, parsed.lost.faults, parsed.lost.total),
            (11, 3, 4)
        );
        let pids: Vec<u32> = parsed.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [100, 200, 300]);
        assert_eq!(
            parsed.processes[0].stalls.memcg_reclaim.allocations[0].gfp,
            "GFP_HIGHUSER_MOVABLE"
        );
        assert_eq!(
            parsed.swap.by_memcg[0].memcg_path.as_deref(),
            Some("/db.slice")
        );
        assert_eq!(parsed.kswapd[0].woken_by[0].comm, "postgres");
        assert_eq!(parsed.oom_kills.len(), 1);
        assert_eq!(parsed.oom_kills[0].victim.tgid, 4242);
        let flagged: Vec<bool> = parsed.timeline.iter().map(|r| r.flagged).collect();
        assert_eq!(flagged, [false, true]);
        let again = render(|out| write(&parsed, out));
        assert_eq!(again, text);
    }

    #[test]
    fn a_class_summary_is_flattened_beside_its_buckets() {
        let text = render(|out| write(&fixture::report(), out));
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let minor = &value["processes"][0]["classes"]["minor"];
        assert_eq!(minor["count"], 4);
        assert_eq!(minor["total_ns"], 5_000);
        assert_eq!(minor["p50_ns"], 1_000);
        assert_eq!(minor["max_ns"], 2_000);
        assert_eq!(minor["log2_buckets"][2]["lo_ns"], 1_024);
        assert_eq!(minor["log2_buckets"][2]["count"], 2);
        assert_eq!(value["processes"][0]["stall_time_ns"], 230_000_000);
        assert_eq!(
            value["timeline"][1]["processes"][0]["by_kind"]["memcg_reclaim"],
            20.0
        );
        assert_eq!(value["stop_reason"], "duration");
    }

    /// docs/report.schema.json, compiled (which also checks it against the draft's meta-schema).
    fn validator() -> jsonschema::Validator {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/report.schema.json"
        ));
        let schema: serde_json::Value = serde_json::from_str(text).expect("the schema is JSON");
        jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
    }

    /// Where and why `text` breaks the schema; empty when it does not.
    fn schema_errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        validator
            .iter_errors(&value)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn the_fixtures_and_the_model_reports_match_the_schema() {
        let validator = validator();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut documents: Vec<(String, String)> = ["demo-v1.json", "oom-v1.json"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(fixtures.join(name)).expect("a fixture");
                (name.to_string(), text)
            })
            .collect();
        let empty = Report::new(&fixture::model_of(&[], None), &View::default());
        let report = fixture::report();
        assert!(
            report.timeline.iter().any(|r| !r.memory_moves.is_empty()),
            "the fixture's memory moves are checked against the schema too"
        );
        for (name, report) in [("fixture model", report), ("empty model", empty)] {
            documents.push((name.to_string(), render(|out| write(&report, out))));
        }
        for (name, text) in &documents {
            let errors = schema_errors(&validator, text);
            assert!(errors.is_empty(), "{name}:\n{}", errors.join("\n"));
        }
    }

    #[test]
    fn the_schema_refuses_what_the_output_must_not_have() {
        let validator = validator();
        let text = render(|out| write(&fixture::report(), out));
        let mut value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        value["swap"]["by_task"][0]["memcg_path"] = serde_json::Value::Null;
        value["swap"]["by_memcg"][0]["pid"] = serde_json::Value::Null;
        value["timeline"][1]["len_ms"] = 0.into();
        value["thresholds"]["psi_pct"] = serde_json::Value::Null;
        let object = value.as_object_mut().expect("an object");
        object.remove("kswapd");
        let errors = schema_errors(&validator, &value.to_string());
        let found = |needle: &str| errors.iter().any(|e| e.contains(needle));
        for needle in [
            "/swap/by_task/0: Additional properties are not allowed ('memcg_path'",
            "/swap/by_memcg/0: Additional properties are not allowed ('pid'",
            "/timeline/1/len_ms: 0 is less than or equal to the minimum of 0",
            "/thresholds/psi_pct: null is not of type \"number\"",
            "\"kswapd\" is a required property",
        ] {
            assert!(found(needle), "{needle} not in:\n{}", errors.join("\n"));
        }
        assert_eq!(errors.len(), 5, "{}", errors.join("\n"));
    }

    #[test]
    fn swap_entries_carry_only_their_own_fields() {
        let text = render(|out| write(&fixture::report(), out));
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        // In name order: a parsed object sorts its keys.
        let keys = |entry: &serde_json::Value| -> Vec<String> {
            let object = entry.as_object().expect("an object");
            object.keys().cloned().collect()
        };
        assert_eq!(
            keys(&value["swap"]["by_task"][0]),
            ["comm", "in_pages", "out_pages", "pid"]
        );
        assert_eq!(
            keys(&value["swap"]["by_memcg"][1]),
            [
                "in_pages",
                "memcg_id",
                "memcg_path",
                "memory_limit_bytes",
                "out_pages"
            ]
        );
        // Cgroup 999 was never named: its path is a real null.
        assert_eq!(value["swap"]["by_memcg"][1]["memcg_id"], 999);
        assert!(value["swap"]["by_memcg"][1]["memcg_path"].is_null());
    }

    #[test]
    fn non_finite_thresholds_of_a_recording_are_written_as_numbers() {
        let mut model = fixture::model();
        model.header.thresholds = Thresholds {
            stall_pct: f64::NAN,
            psi_pct: f64::NEG_INFINITY,
        };
        let report = Report::new(&model, &View::default());
        let text = render(|out| write(&report, out));
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["thresholds"]["stall_pct"], f64::MAX);
        // As docs/json-schema.md shows it.
        assert!(
            text.contains("\"stall_pct\": 1.7976931348623157e+308,"),
            "{text}"
        );
        assert_eq!(value["thresholds"]["psi_pct"], 0.0);
        // The flags are those of the thresholds recorded: NaN flags no process share, -inf
        // every PSI reading.
        let flagged: Vec<bool> = report.timeline.iter().map(|r| r.flagged).collect();
        assert_eq!(flagged, [true, true]);
        let errors = schema_errors(&validator(), &text);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    #[test]
    fn an_empty_report_round_trips_too() {
        let report = Report::new(&fixture::model_of(&[], None), &View::default());
        let text = render(|out| write(&report, out));
        let parsed: Report = serde_json::from_str(&text).expect("the JSON parses as a Report");
        assert!(parsed.processes.is_empty());
        assert_eq!(parsed.stop_reason, crate::samples::StopReason::Unfinished);
        assert_eq!(render(|out| write(&parsed, out)), text);
    }
}
