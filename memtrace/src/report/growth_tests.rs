use super::*;
use crate::{
    model::Model,
    report::fixture::render,
    samples::{
        Header, IntervalSample,
        growth::{MemcgUsage, MemoryInterval, MemoryReading},
    },
};

const S: u64 = 1_000_000_000;

/// A model of `seconds` readings of a leaker (8 MiB/s in a 1 GiB memcg) and a steady process.
fn model(seconds: u64) -> Model {
    let mut model = Model::new(Header::default());
    for t in 1..=seconds {
        let anon = 100 * 1024 + 8 * 1024 * t;
        let mut sample = IntervalSample {
            index: t - 1,
            start_ns: (t - 1) * S,
            end_ns: t * S,
            ..IntervalSample::default()
        };
        sample.machine.swap_total_kb = 1 << 20;
        sample.memory = MemoryInterval {
            read_ns: t * S,
            readings: vec![
                MemoryReading {
                    pid: 42,
                    start_ns: 1,
                    comm: "leaker".into(),
                    memcg_id: 9,
                    rss_anon_kb: anon,
                    ..MemoryReading::default()
                },
                MemoryReading {
                    pid: 7,
                    start_ns: 1,
                    comm: "idle".into(),
                    rss_anon_kb: 5000,
                    ..MemoryReading::default()
                },
            ],
            memcgs: vec![MemcgUsage {
                id: 9,
                usage_kb: anon + 1024,
                limit_kb: Some(1 << 20),
            }],
            ..MemoryInterval::default()
        };
        model.apply(&sample);
    }
    model
}

#[test]
fn the_section_names_the_steady_grower_with_its_forecast() {
    let report = GrowthReport::new(&model(30), None);
    assert_eq!(report.readings, 30);
    let text = render(|out| write(&report, out));
    assert_eq!(
        text,
        "\nMemory growth (resident + swap, 30 readings)\n\
         \u{20}   PID COMM               FIRST    LAST    ANON    SWAP      SLOPE    R²     RECENT    R²  NOTE\n\
         \u{20}    42 leaker              108M    340M    340M      0B   +8.00M/s  1.00   +8.00M/s  1.00  STEADY GROWTH, memcg limit in ~85s\n\
         leaker[42] grows steadily: +8.00M/s over 29s (R² 1.00), 108M to 340M; at this rate it reaches its memory cgroup's limit (1.00G) in ~85s\n"
    );
}

#[test]
fn nothing_grew_says_so_and_no_readings_says_nothing() {
    let quiet = GrowthReport {
        readings: 3,
        ..GrowthReport::default()
    };
    assert_eq!(
        render(|out| write(&quiet, out)),
        "\nMemory growth: no traced process grew or shrank by 1M or more (3 readings)\n"
    );
    assert_eq!(render(|out| write(&GrowthReport::default(), out)), "");
}

#[test]
fn the_live_part_names_a_forecast_under_an_hour() {
    let model = model(30);
    assert_eq!(
        render(|out| write_live(&model, out)),
        " | leaker[42] +8.00M/s: memcg limit in ~85s"
    );
    assert_eq!(render(|out| write_live(&Model::default(), out)), "");
}

#[test]
fn a_pid_view_keeps_only_its_processes_and_json_round_trips() {
    let report = GrowthReport::new(&model(12), Some(&[7]));
    assert_eq!(report.processes.len(), 1);
    assert_eq!(report.processes[0].comm, "idle");
    let json = serde_json::to_string(&report).expect("serializes");
    let back: GrowthReport = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, report);
}

#[test]
fn rates_and_times_read_well() {
    assert_eq!(rate_kb(8192.0), "+8.00M/s");
    assert_eq!(rate_kb(-120.0), "-120K/s");
    assert_eq!(eta(42.4), "~42s");
    assert_eq!(eta(420.0), "~7 min");
    assert_eq!(eta(3.5 * 3600.0), "~3.5 h");
    assert_eq!(eta(3.0 * 86_400.0), "~3.0 days");
}
