//! Data completeness of a day from what the ingest stored: full, partial, explained by a power
//! failure, late, and a meter that sent nothing.

use bus::Envelope;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use mdm::calendar::day_bounds;
use mdm::completeness::{CompletenessConfig, for_day};
use mdm::events::Routing;
use mdm::ingest::Ingest;
use model::{DailyReading, HesMessage, IntervalReading, MeterSerial, MissedReason};
use store::Store;
use store::mdm::ServicePoint;

fn serial(s: &str) -> MeterSerial {
    MeterSerial::new(s).unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

fn block(meter: &str, ends: impl Iterator<Item = i64>) -> HesMessage {
    let (start, _) = day_bounds(day());
    HesMessage::BlockLoad {
        meter: serial(meter),
        intervals: ends
            .map(|i| IntervalReading {
                meter: serial(meter),
                interval_end: start + Duration::minutes(15 * i),
                avg_voltage_v: Some(231.0),
                avg_current_a: Some(1.0),
                avg_phase_voltage_v: None,
                avg_phase_current_a: None,
                import_wh: 100,
                import_vah: 110,
                export_wh: None,
                export_vah: None,
                quality: vec![],
            })
            .collect(),
    }
}

fn daily(meter: &str) -> HesMessage {
    HesMessage::DailyProfile {
        meter: serial(meter),
        days: vec![DailyReading {
            meter: serial(meter),
            captured_at: day_bounds(day()).1,
            import_wh: 9_600,
            import_vah: 10_560,
            export_wh: None,
            export_vah: None,
            quality: vec![],
        }],
    }
}

fn take(ingest: &Ingest, messages: Vec<HesMessage>, at: DateTime<Utc>) {
    let envelopes: Vec<Envelope> = messages.into_iter().map(Envelope::new).collect();
    let refs: Vec<&Envelope> = envelopes.iter().collect();
    ingest.ingest(&refs, at).unwrap();
}

#[test]
fn completeness_of_a_day_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    let (start, end) = day_bounds(day());
    // Five meters installed; M5 sends nothing at all.
    for m in ["M1", "M2", "M3", "M4", "M5"] {
        let sp = format!("SP-{m}");
        store
            .mdm_put_service_point(&ServicePoint {
                id: sp.clone(),
                address: "Lucknow".into(),
                sanctioned_load_w: 2000,
            })
            .unwrap();
        store
            .mdm_install_meter(&serial(m), &sp, start - Duration::days(30))
            .unwrap();
    }
    let ingest = Ingest::new(store.clone(), Routing::default());
    let soon = end + Duration::hours(1);
    take(
        &ingest,
        vec![
            block("M1", 1..=96),
            daily("M1"),
            // M2 lacks 01:15 .. 02:00.
            block("M2", (1..=4).chain(9..=96)),
            daily("M2"),
            // M3 was off from 02:00 to 03:00: no intervals ending 02:15 .. 03:00, explained.
            block("M3", (1..=8).chain(13..=96)),
            daily("M3"),
            HesMessage::MissedData {
                meter: serial("M3"),
                profile: "block_load".into(),
                from: start + Duration::minutes(135),
                to: start + Duration::minutes(180),
                reason: MissedReason::PowerOff {
                    off_from: start + Duration::minutes(120),
                    off_to: start + Duration::minutes(180),
                },
            },
        ],
        soon,
    );
    // M4's day arrives complete but the next evening.
    take(
        &ingest,
        vec![block("M4", 1..=96), daily("M4")],
        end + Duration::hours(20),
    );
    let c = for_day(&store, day(), &CompletenessConfig::default()).unwrap();
    assert_eq!(c.meters, 5);
    assert_eq!((c.full_block_load, c.full_daily, c.on_time), (3, 4, 2));
    assert!((c.share_on_time - 0.4).abs() < 1e-9);
    let short: Vec<(&str, u32, u32, bool, bool)> = c
        .short
        .iter()
        .map(|s| {
            (
                s.meter.as_str(),
                s.missing_intervals,
                s.explained_intervals,
                s.daily_missing,
                s.late,
            )
        })
        .collect();
    assert_eq!(
        short,
        vec![
            ("M2", 4, 0, false, false),
            ("M4", 0, 0, false, true),
            ("M5", 96, 0, true, false),
        ]
    );
}
