-- 0009: payments to postpaid accounts (issue 6, use cases 18.1–18.6).

-- Payments: one table for every way money comes in (the gateway, counter and bank files), so a
-- payment reference is kept once whatever the scheme. New: `applied` (paid into a postpaid
-- account, see `receipt`) and `digital` (through a digital channel: the digital-payment
-- rebate applies). SQLite cannot change a CHECK in place: the table is rebuilt.
CREATE TABLE payment_0009 (
    gateway      TEXT NOT NULL,
    payment_id   TEXT NOT NULL,
    consumer_no  TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('received', 'credited', 'applied', 'refused', 'unmatched')),
    reason       TEXT,
    body         TEXT NOT NULL,
    paid_at      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    settled_at   INTEGER,
    -- the balance after the credit
    balance      INTEGER,
    digital      INTEGER NOT NULL DEFAULT 1 CHECK (digital IN (0, 1)),
    PRIMARY KEY (gateway, payment_id)
);
INSERT INTO payment_0009 (gateway, payment_id, consumer_no, amount, status, reason, body,
    paid_at, received_at, settled_at, balance, digital)
    SELECT gateway, payment_id, consumer_no, amount, status, reason, body,
        paid_at, received_at, settled_at, balance, 1 FROM payment;
DROP TABLE payment;
ALTER TABLE payment_0009 RENAME TO payment;
CREATE INDEX payment_of_consumer ON payment (consumer_no, received_at);
CREATE INDEX payment_unsettled ON payment (received_at) WHERE status = 'received';
-- a postpaid account's payments in the order they were paid, for its statement
CREATE INDEX payment_applied ON payment (consumer_no, paid_at) WHERE status = 'applied';

-- A receipt for every payment credited to a wallet or applied to a postpaid account: its
-- number, and for postpaid what it paid (the allocation, JSON) and what was left owing.
CREATE TABLE receipt (
    receipt_no   TEXT PRIMARY KEY NOT NULL,
    gateway      TEXT NOT NULL,
    payment_id   TEXT NOT NULL,
    consumer_no  TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    paid_at      INTEGER NOT NULL,
    allocation   TEXT NOT NULL,
    -- postpaid: owed after this payment (negative: in advance); prepaid: the balance
    standing     INTEGER NOT NULL,
    issued_at    INTEGER NOT NULL,
    UNIQUE (gateway, payment_id)
);
CREATE INDEX receipt_of_consumer ON receipt (consumer_no, issued_at);
