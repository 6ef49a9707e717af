//! The bill as PDF: it opens, its text extracts with the consumer number, the period, the units
//! and the total (`pdftotext`), and it renders to a page (`pdftoppm`). Poppler is required when
//! `URJA_REQUIRE_POPPLER=1` (as CI sets it); otherwise its absence skips those checks loudly.

mod common;

use std::process::Command;

use billing::bill::compute;
use billing::pdf::{BillHeader, HistoryMonth, render};
use common::{input, tariff};

fn poppler() -> bool {
    let found = Command::new("pdftotext").arg("-v").output().is_ok();
    if !found {
        assert!(
            std::env::var("URJA_REQUIRE_POPPLER").as_deref() != Ok("1"),
            "URJA_REQUIRE_POPPLER=1 but pdftotext is not installed (Debian: poppler-utils)"
        );
        eprintln!(
            "SKIPPING the PDF text and rendering checks: pdftotext (poppler-utils) is not installed"
        );
    }
    found
}

#[test]
fn a_bill_pdf_reads_and_renders_like_a_bill() {
    let mut i = input(250);
    i.arrears = model::Paise(32_040);
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    i.readings = Some(mdm::determinants::PeriodReadings {
        meter: model::MeterSerial::new("URJ10000001").unwrap(),
        source: "billing_profile".into(),
        previous_at: at("2026-11-01T00:00:00+05:30"),
        present_at: at("2026-12-01T00:00:00+05:30"),
        previous_wh: 1_234_567,
        present_wh: 1_484_567,
        previous_vah: 1_300_000,
        present_vah: 1_560_000,
        previous_export_wh: None,
        present_export_wh: None,
    });
    let bill = compute(&tariff(), &i).unwrap();
    let header = BillHeader {
        utility: "Urja Vidyut Vitaran Nigam".into(),
        bill_no: "B-2026-11-000123".into(),
        consumer_name: "Asha Devi".into(),
        address: "12 Civil Lines, Lucknow".into(),
        category: "Residential (LT-1)".into(),
        meter: "URJ10000001".into(),
        sanctioned_kw: "2".into(),
    };
    let months = [
        "Dec 25", "Jan 26", "Feb 26", "Mar 26", "Apr 26", "May 26", "Jun 26", "Jul 26", "Aug 26",
        "Sep 26", "Oct 26", "Nov 26",
    ];
    let history: Vec<HistoryMonth> = months
        .iter()
        .enumerate()
        .map(|(n, m)| HistoryMonth {
            label: m.to_string(),
            units: 150_000 + (n as i64 % 6) * 40_000,
        })
        .collect();
    let pdf = render(&bill, &header, &history);
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
    if !poppler() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bill.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8_lossy(&text.stdout);
    for wanted in [
        "C-1",
        "01 Nov 2026 to 30 Nov 2026",
        "250.000 kWh",
        "Rs 1,711.50",
        "Rs 2,031.90",
        "Energy charge",
        "Asha Devi",
        "Consumption, last 12 months",
        "Previous, 01 Nov 2026",
        "Present, 01 Dec 2026",
        "1484.567",
    ] {
        assert!(text.contains(wanted), "{wanted:?} not in:\n{text}");
    }
    let png = dir.path().join("page");
    let rendered = Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-singlefile"])
        .arg(&path)
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let image = std::fs::read(png.with_extension("png")).unwrap();
    assert!(image.starts_with(b"\x89PNG"));
    assert!(
        image.len() > 5_000,
        "a page with text and a chart, not a blank one"
    );
    if let Ok(out) = std::env::var("URJA_KEEP_BILL_PNG") {
        std::fs::copy(png.with_extension("png"), out).unwrap();
    }
}
