-- 0010: confirmed tamper periods (use case 5.6): a span in which a meter was tampered with,
-- confirmed by a person, assessed on the consumer's next bill and billed once.

-- `source` is `operator` (confirmed at the desk) or `inspection` (a field inspection, issue 7).
-- `billed_period_from` is the first day of the bill period the assessment was billed in (the
-- bill is keyed by consumer and period start); NULL until billed. A re-run of that period's
-- cycle bills it again in the same period, never in another.
CREATE TABLE tamper_period (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_no         TEXT NOT NULL,
    meter               TEXT NOT NULL,
    tamper_code         INTEGER,
    reason              TEXT NOT NULL,
    from_at             INTEGER NOT NULL,
    to_at               INTEGER NOT NULL,
    confirmed_by        TEXT NOT NULL,
    confirmed_at        INTEGER NOT NULL,
    source              TEXT NOT NULL CHECK (source IN ('operator', 'inspection')),
    billed_period_from  TEXT,
    CHECK (to_at > from_at)
);
CREATE INDEX tamper_period_consumer ON tamper_period (consumer_no, to_at);
