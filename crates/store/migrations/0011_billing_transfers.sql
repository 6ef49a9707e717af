-- 0011: moving between prepaid and postpaid (use cases 13, 14.10). A billing account bills
-- only the days it was postpaid: from `billed_from` (the day it came back from prepaid) and up
-- to the day before `closed_on` (the day it went prepaid: its final bill ends the day before).
ALTER TABLE billing_account ADD COLUMN billed_from TEXT;
ALTER TABLE billing_account ADD COLUMN closed_on TEXT;

-- Money moved into or out of a postpaid account other than by bills and payments: what a
-- final bill left, carried to the prepaid wallet (a credit here), and a wallet's closing
-- balance carried in on the way back (a credit if it was positive, owed if negative).
-- Positive: owed; negative: a credit. Once per key.
CREATE TABLE billing_adjustment (
    consumer_no TEXT NOT NULL,
    key         TEXT NOT NULL,
    on_date     TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (consumer_no, key)
);
