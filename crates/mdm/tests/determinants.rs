//! A consumer's daily consumption and billing determinants from the store, across a meter
//! change in the middle of the day.

use bus::Envelope;
use chrono::{Duration, NaiveDate};
use mdm::calendar::day_bounds;
use mdm::determinants::{Metering, daily_for_all, daily_for_consumer, determinants_for_consumer};
use mdm::events::Routing;
use mdm::ingest::Ingest;
use model::{HesMessage, IntervalReading, MeterSerial};
use store::Store;
use store::mdm::{Consumer, ServicePoint};

fn serial(s: &str) -> MeterSerial {
    MeterSerial::new(s).unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

/// A whole day of block load for `meter`, `wh` every interval, the one ending 20:00 IST doubled.
fn day_of(meter: &str, wh: i64) -> HesMessage {
    let (start, _) = day_bounds(day());
    HesMessage::BlockLoad {
        meter: serial(meter),
        intervals: (1..=96)
            .map(|i| {
                let peak = if i == 80 { 2 } else { 1 };
                IntervalReading {
                    meter: serial(meter),
                    interval_end: start + Duration::minutes(15 * i),
                    avg_voltage_v: Some(230.0),
                    avg_current_a: Some(1.0),
                    avg_phase_voltage_v: None,
                    avg_phase_current_a: None,
                    import_wh: wh * peak,
                    import_vah: (wh + 20) * peak,
                    export_wh: Some(3),
                    export_vah: Some(3),
                    quality: vec![],
                }
            })
            .collect(),
    }
}

#[test]
fn a_consumer_is_measured_by_each_meter_in_its_own_span() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    let (start, end) = day_bounds(day());
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-1".into(),
                name: "Ravi Kumar".into(),
                category: "residential".into(),
                net_metered: true,
            },
            start,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-1".into(),
            address: "4 Mall Road, Kanpur".into(),
            sanctioned_load_w: 5000,
        })
        .unwrap();
    store
        .mdm_connect_consumer("SP-1", "C-1", start - Duration::days(100))
        .unwrap();
    store
        .mdm_install_meter(&serial("OLD"), "SP-1", start - Duration::days(100))
        .unwrap();
    // The meter is changed at 12:00 IST.
    store
        .mdm_install_meter(&serial("NEW"), "SP-1", start + Duration::hours(12))
        .unwrap();
    let ingest = Ingest::new(store.clone(), Routing::default());
    let messages = [day_of("OLD", 100), day_of("NEW", 200)].map(Envelope::new);
    ingest
        .ingest(&messages.iter().collect::<Vec<_>>(), end)
        .unwrap();

    let metering = Metering::default();
    let daily = daily_for_consumer(&store, "C-1", day(), &metering)
        .unwrap()
        .unwrap();
    // 48 intervals of OLD at 100 Wh, 48 of NEW at 200 Wh, the 20:00 one doubled (NEW's).
    assert_eq!(daily.figures.import_wh, 48 * 100 + 47 * 200 + 400);
    assert_eq!(daily.figures.import_vah, 48 * 120 + 47 * 220 + 440);
    assert_eq!(daily.meters, vec![serial("OLD"), serial("NEW")]);
    assert_eq!(daily.figures.intervals, 96);
    assert_eq!(daily.missing_intervals, 0);
    assert!(!daily.estimated);
    // 400 Wh in 15 minutes: 1.6 kW, at 20:00 IST.
    let peak = daily.figures.max_w.unwrap();
    assert_eq!(peak.value, 1600);
    assert_eq!(peak.at, start + Duration::hours(20));

    let month = determinants_for_consumer(&store, "C-1", start, end, &metering)
        .unwrap()
        .unwrap();
    assert_eq!(month.figures.import_wh, daily.figures.import_wh);
    assert_eq!(
        month.zone_import_wh.iter().sum::<i64>(),
        month.figures.import_wh
    );
    // Evening peak zone (18:00–22:00 IST): 16 intervals of NEW, one doubled.
    assert_eq!(month.zone_import_wh[3], 15 * 200 + 400);
    // Net-metered: the export is reported.
    assert_eq!(month.export_wh, Some(96 * 3));
    assert!(
        daily_for_consumer(&store, "C-404", day(), &metering)
            .unwrap()
            .is_none()
    );

    // A second consumer whose meter sent only the first half of the day, and a third with a
    // meter that sent nothing: all three in one pass, each as daily_for_consumer has it.
    for (c, sp, meter) in [("C-2", "SP-2", "M2"), ("C-3", "SP-3", "M3")] {
        store
            .mdm_put_consumer(
                &Consumer {
                    consumer_no: c.into(),
                    name: "Asha".into(),
                    category: "residential".into(),
                    net_metered: false,
                },
                start,
            )
            .unwrap();
        store
            .mdm_put_service_point(&ServicePoint {
                id: sp.into(),
                address: "Kanpur".into(),
                sanctioned_load_w: 2000,
            })
            .unwrap();
        store
            .mdm_connect_consumer(sp, c, start - Duration::days(10))
            .unwrap();
        store
            .mdm_install_meter(&serial(meter), sp, start - Duration::days(10))
            .unwrap();
    }
    let mut half = day_of("M2", 50);
    if let HesMessage::BlockLoad { intervals, .. } = &mut half {
        intervals.truncate(48);
    }
    ingest.ingest(&[&Envelope::new(half)], end).unwrap();
    let all = daily_for_all(&store, day(), &metering).unwrap();
    let names: Vec<&str> = all.iter().map(|f| f.consumer_no.as_str()).collect();
    assert_eq!(names, vec!["C-1", "C-2", "C-3"]);
    for f in &all {
        let one = daily_for_consumer(&store, &f.consumer_no, day(), &metering)
            .unwrap()
            .unwrap();
        let det = determinants_for_consumer(&store, &f.consumer_no, start, end, &metering)
            .unwrap()
            .unwrap();
        assert_eq!(f.import_wh, one.figures.import_wh, "{f:?}");
        assert_eq!(f.import_vah, one.figures.import_vah, "{f:?}");
        assert_eq!(f.intervals, one.figures.intervals, "{f:?}");
        assert_eq!(f.missing_intervals, one.missing_intervals, "{f:?}");
        assert_eq!(f.estimated, one.estimated, "{f:?}");
        assert_eq!(f.zone_wh, det.zone_import_wh, "{f:?}");
        assert_eq!(f.zone_vah, det.zone_import_vah, "{f:?}");
    }
    assert_eq!((all[1].import_wh, all[1].missing_intervals), (48 * 50, 48));
    assert_eq!((all[2].intervals, all[2].missing_intervals), (0, 96));
}
