//! The report as one JSON document (schema in docs/json-schema.md).
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
    use crate::report::{
        SCHEMA, View,
        fixture::{self, render},
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
