-- 0004: the prepaid engine's wallets (issue 5).
--
-- A wallet per prepaid consumer is an append-only ledger: every credit (positive) and debit
-- (negative) in paise with its cause, idempotent by the cause's id (a recharge's payment id, a
-- daily charge's consumer and date, …). The balance is the ledger's sum; `balance_after` on each
-- entry lets it be checked without adding up the whole ledger.
CREATE TABLE wallet (
    consumer_no TEXT PRIMARY KEY NOT NULL,
    opened_at   INTEGER NOT NULL,
    -- the next entry's number
    next_n      INTEGER NOT NULL,
    balance     INTEGER NOT NULL
);

-- kind: 'opening_balance' | 'recharge' | 'daily_charge' | 'adjustment' | 'refund'
CREATE TABLE wallet_entry (
    consumer_no   TEXT NOT NULL REFERENCES wallet (consumer_no),
    n             INTEGER NOT NULL,
    cause         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    amount        INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    detail        TEXT NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (consumer_no, n),
    UNIQUE (consumer_no, cause)
);
