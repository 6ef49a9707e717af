-- 0008: postpaid billing (issue 6): who is billed in which cycle, and the bills issued.

-- A postpaid consumer's billing: the cycle (the day of the month the billing period starts),
-- the contract demand, and what they owed when they came to Urja (arrears carried in).
CREATE TABLE billing_account (
    consumer_no      TEXT PRIMARY KEY NOT NULL,
    cycle_day        INTEGER NOT NULL CHECK (cycle_day BETWEEN 1 AND 28),
    contract_demand  INTEGER,
    opening_arrears  INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
CREATE INDEX billing_account_cycle ON billing_account (cycle_day, consumer_no);

-- A bill as issued: the whole bill (JSON) and what it was computed from (its hash), in
-- versions: a re-run on the same figures issues nothing; on changed figures (a provisional
-- bill's estimates replaced, an edit) a new version supersedes the one before.
CREATE TABLE bill (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_no  TEXT NOT NULL,
    period_from  TEXT NOT NULL,
    period_to    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('issued', 'superseded')),
    provisional  INTEGER NOT NULL CHECK (provisional IN (0, 1)),
    input_hash   TEXT NOT NULL,
    body         TEXT NOT NULL,
    current      INTEGER NOT NULL,
    payable      INTEGER NOT NULL,
    carried_forward INTEGER NOT NULL,
    due_date     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (consumer_no, period_from, version)
);
CREATE UNIQUE INDEX bill_in_force ON bill (consumer_no, period_from) WHERE state = 'issued';
