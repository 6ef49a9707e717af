//! A bill as a one-page A4 PDF, the way a utility's bill looks: the utility and the bill's
//! numbers, the consumer and the connection, the period and the units, the charges line by
//! line, what is payable by and after the due date, and a chart of the last twelve months'
//! consumption. Written with `pdf-writer` in the PDF's built-in fonts (Helvetica for text,
//! Courier for figures, so columns align), so it needs nothing installed to make or to open.
//! The built-in fonts have no ₹: amounts read "Rs".

use chrono::{DateTime, Utc};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use store::{Store, StoreError};

use crate::bill::{Bill, units_text};

/// The PDF of stored bill `id` as it stands at `now`: the consumer and connection from the
/// store, the history from the bills in force up to it; `None` for no such bill.
pub fn from_store(
    store: &Store,
    id: u64,
    now: DateTime<Utc>,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(stored) = store.bill(id)? else {
        return Ok(None);
    };
    let party = store
        .bill_header(&stored.consumer_no, now)?
        .unwrap_or_default();
    let history = store.bills_of(&stored.consumer_no, 60)?;
    let bill: Bill = serde_json::from_str(&stored.body)
        .map_err(|e| StoreError::Corrupt(format!("bill {id} is unreadable: {e}")))?;
    // The bills in force up to this one, oldest first, their units.
    let mut months: Vec<HistoryMonth> = history
        .iter()
        .filter(|b| b.state == "issued" && b.period_from <= stored.period_from)
        .filter_map(|b| {
            let body: Bill = serde_json::from_str(&b.body).ok()?;
            Some(HistoryMonth {
                label: b.period_from.format("%b %y").to_string(),
                units: body.billed_units,
            })
        })
        .collect();
    months.reverse();
    Ok(Some(render(
        &bill,
        &BillHeader {
            utility: "Urja electricity distribution".into(),
            bill_no: format!(
                "{}-{}-v{}",
                stored.consumer_no, stored.period_from, stored.version
            ),
            consumer_name: party.name,
            address: party.address,
            category: party.category,
            meter: party.meter.unwrap_or_default(),
            sanctioned_kw: format!(
                "{}.{:03}",
                party.sanctioned_w / 1000,
                party.sanctioned_w % 1000
            ),
        },
        &months,
    )))
}

/// What the bill shows besides its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillHeader {
    pub utility: String,
    pub bill_no: String,
    pub consumer_name: String,
    pub address: String,
    pub category: String,
    pub meter: String,
    pub sanctioned_kw: String,
}

/// One month of the consumption history: its label ("Nov 26") and units (Wh or VAh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryMonth {
    pub label: String,
    pub units: i64,
}

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const LEFT: f32 = 50.0;
const RIGHT: f32 = WIDTH - 50.0;
const TEXT: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const MONO: Name<'static> = Name(b"F3");

/// Text the built-in fonts can show: ASCII, ₹ as "Rs", anything else as '?'.
fn latin(s: &str) -> Vec<u8> {
    s.replace('₹', "Rs ")
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

struct Page {
    c: Content,
}

impl Page {
    fn text(&mut self, font: Name<'_>, size: f32, x: f32, y: f32, s: &str) {
        self.c.begin_text();
        self.c.set_font(font, size);
        self.c.next_line(x, y);
        self.c.show(Str(&latin(s)));
        self.c.end_text();
    }

    /// Courier, right-aligned at `right` (its glyphs are 0.6 em wide).
    fn figure(&mut self, size: f32, right: f32, y: f32, s: &str) {
        let w = latin(s).len() as f32 * 0.6 * size;
        self.text(MONO, size, right - w, y, s);
    }

    fn rule(&mut self, y: f32) {
        self.c.set_line_width(0.5);
        self.c.move_to(LEFT, y);
        self.c.line_to(RIGHT, y);
        self.c.stroke();
    }

    fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, grey: f32) {
        self.c.set_fill_gray(grey);
        self.c.rect(x, y, w, h);
        self.c.fill_nonzero();
        self.c.set_fill_gray(0.0);
    }
}

/// The bill as PDF bytes.
pub fn render(bill: &Bill, header: &BillHeader, history: &[HistoryMonth]) -> Vec<u8> {
    let mut p = Page { c: Content::new() };

    // The utility and the bill.
    p.fill_rect(LEFT, 770.0, RIGHT - LEFT, 40.0, 0.88);
    p.text(BOLD, 16.0, LEFT + 10.0, 792.0, &header.utility);
    p.text(TEXT, 10.0, LEFT + 10.0, 777.0, "Electricity bill");
    let marks: Vec<&str> = [
        (bill.final_bill, "FINAL BILL"),
        (bill.provisional, "PROVISIONAL BILL"),
    ]
    .into_iter()
    .filter_map(|(on, mark)| on.then_some(mark))
    .collect();
    for (i, mark) in marks.iter().enumerate() {
        p.text(BOLD, 12.0, RIGHT - 150.0, 786.0 - 15.0 * i as f32, mark);
    }
    let mut y = 745.0;
    let pairs = [
        ("Bill number", header.bill_no.clone()),
        ("Bill date", bill.bill_date.format("%d %b %Y").to_string()),
        ("Due date", bill.due_date.format("%d %b %Y").to_string()),
        (
            "Billing period",
            format!(
                "{} to {}",
                bill.from.format("%d %b %Y"),
                bill.to.format("%d %b %Y")
            ),
        ),
    ];
    for (k, v) in &pairs {
        p.text(TEXT, 10.0, LEFT, y, k);
        p.text(BOLD, 10.0, LEFT + 95.0, y, v);
        y -= 14.0;
    }
    let mut cy = 745.0;
    let consumer = [
        ("Consumer no.", bill.consumer_no.clone()),
        ("Name", header.consumer_name.clone()),
        ("Address", header.address.clone()),
        ("Category", header.category.clone()),
        ("Sanctioned load", format!("{} kW", header.sanctioned_kw)),
        ("Meter", header.meter.clone()),
    ];
    for (k, v) in &consumer {
        p.text(TEXT, 10.0, 320.0, cy, k);
        p.text(BOLD, 10.0, 410.0, cy, v);
        cy -= 14.0;
    }
    y = y.min(cy) - 8.0;
    p.rule(y);
    y -= 18.0;
    p.text(TEXT, 10.0, LEFT, y, "Units billed");
    p.text(
        BOLD,
        10.0,
        LEFT + 95.0,
        y,
        &format!("{} kWh", units_text(bill.billed_units)),
    );
    if bill.carried_forward > 0 {
        p.text(
            TEXT,
            10.0,
            320.0,
            y,
            &format!("Carried forward: {} kWh", units_text(bill.carried_forward)),
        );
    }
    y -= 16.0;
    if let Some(r) = &bill.readings {
        let when = |t: chrono::DateTime<chrono::Utc>| {
            mdm::calendar::ist_date(t).format("%d %b %Y").to_string()
        };
        let source = if r.source == "billing_profile" {
            "billing profile"
        } else {
            "midnight snapshots"
        };
        // A small table: the registers then and now, and the advance between them.
        let columns = [LEFT, LEFT + 190.0, LEFT + 300.0, LEFT + 410.0];
        let head = [
            format!("Meter readings ({source})"),
            format!("Previous, {}", when(r.previous_at)),
            format!("Present, {}", when(r.present_at)),
            "Advance".to_string(),
        ];
        for (x, h) in columns.iter().zip(&head) {
            p.text(TEXT, 9.0, *x, y, h);
        }
        for (name, before, now) in [
            ("kWh", r.previous_wh, r.present_wh),
            ("kVAh", r.previous_vah, r.present_vah),
        ] {
            y -= 13.0;
            p.text(TEXT, 9.5, columns[0] + 10.0, y, name);
            p.text(BOLD, 9.5, columns[1], y, &units_text(before));
            p.text(BOLD, 9.5, columns[2], y, &units_text(now));
            p.text(BOLD, 9.5, columns[3], y, &units_text(now - before));
        }
        y -= 16.0;
    }
    y -= 6.0;

    // The charges.
    p.fill_rect(LEFT, y - 4.0, RIGHT - LEFT, 16.0, 0.88);
    p.text(BOLD, 10.0, LEFT + 6.0, y, "Charges");
    p.text(BOLD, 10.0, RIGHT - 70.0, y, "Amount");
    y -= 18.0;
    for line in bill.lines.iter().filter(|l| l.code != "arrears") {
        p.text(TEXT, 9.5, LEFT + 6.0, y, &line.description);
        p.figure(9.5, RIGHT - 6.0, y, &line.amount.ascii());
        y -= 14.0;
    }
    p.rule(y + 6.0);
    y -= 10.0;
    let arrears = model::Paise(bill.payable_by_due_date.0 - bill.current.0);
    let totals = [
        ("Current charges", bill.current),
        ("Arrears", arrears),
        ("Payable by the due date", bill.payable_by_due_date),
        ("Payable after the due date", bill.payable_after_due_date),
        (
            "Payable if paid by the prompt-payment date",
            bill.payable_if_prompt,
        ),
        ("Rebate if paid digitally", bill.digital_rebate),
    ];
    for (i, (k, v)) in totals.iter().enumerate() {
        let font = if i == 2 { BOLD } else { TEXT };
        p.text(font, 10.5, LEFT + 6.0, y, k);
        p.figure(10.5, RIGHT - 6.0, y, &v.ascii());
        y -= 16.0;
    }

    // The last twelve months' consumption.
    let chart_top = y - 30.0;
    let chart_bottom = 120.0f32.min(chart_top - 120.0).max(60.0);
    p.text(
        BOLD,
        10.0,
        LEFT,
        chart_top + 10.0,
        "Consumption, last 12 months (kWh)",
    );
    let shown: Vec<&HistoryMonth> = history.iter().rev().take(12).rev().collect();
    let max = shown.iter().map(|m| m.units).max().unwrap_or(0).max(1);
    let slot = (RIGHT - LEFT) / 12.0;
    let height = chart_top - chart_bottom - 20.0;
    p.c.set_line_width(0.5);
    p.c.move_to(LEFT, chart_bottom);
    p.c.line_to(RIGHT, chart_bottom);
    p.c.stroke();
    for (i, m) in shown.iter().enumerate() {
        let x = LEFT + slot * i as f32 + slot * 0.2;
        let h = (m.units.max(0) as f32 / max as f32) * height;
        let last = i + 1 == shown.len();
        p.fill_rect(
            x,
            chart_bottom,
            slot * 0.6,
            h,
            if last { 0.25 } else { 0.6 },
        );
        p.text(TEXT, 7.0, x, chart_bottom - 10.0, &m.label);
        p.text(
            TEXT,
            6.5,
            x,
            chart_bottom + h + 3.0,
            &(m.units / 1000).to_string(),
        );
    }
    p.text(
        TEXT,
        7.5,
        LEFT,
        40.0,
        "Amounts in rupees. Pay online, at a counter or through your bank; quote the consumer number.",
    );

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let page = Ref::new(3);
    let content = Ref::new(4);
    let fonts = [
        (Ref::new(5), TEXT, Name(b"Helvetica".as_slice())),
        (Ref::new(6), BOLD, Name(b"Helvetica-Bold".as_slice())),
        (Ref::new(7), MONO, Name(b"Courier".as_slice())),
    ];
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut pg = pdf.page(page);
    pg.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
    pg.parent(tree);
    pg.contents(content);
    {
        let mut resources = pg.resources();
        let mut font_dict = resources.fonts();
        for (id, name, _) in &fonts {
            font_dict.pair(*name, *id);
        }
        font_dict.finish();
    }
    pg.finish();
    for (id, _, base) in fonts {
        pdf.type1_font(id)
            .base_font(base)
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.stream(content, &p.c.finish());
    pdf.finish()
}
