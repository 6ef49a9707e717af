-- 0007: the prepaid engine's operations (issue 5): tariff versions, prepaid accounts, payments
-- as the gateway confirmed them, low-balance alerts per recharge cycle, emergency credit, the
-- disconnection/reconnection cases and the payment-mode migrations.

-- A tariff version is data: the whole tariff as JSON, for prepaid charging or postpaid billing
-- (a postpaid tariff adds demand, power factor, FPPA, …), in force from its date (IST) until a
-- later version of the same scheme and category. Versions already in force are never rewritten.
CREATE TABLE tariff_version (
    scheme         TEXT NOT NULL CHECK (scheme IN ('prepaid', 'postpaid')),
    category       TEXT NOT NULL,
    effective_from TEXT NOT NULL,   -- YYYY-MM-DD (IST)
    code           TEXT NOT NULL,
    body           TEXT NOT NULL,   -- the tariff, JSON
    created_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (scheme, category, effective_from)
);

-- How a consumer pays. A prepaid consumer has a wallet (0004); the row is kept when they go
-- back to postpaid, with the mode changed.
CREATE TABLE prepaid_account (
    consumer_no           TEXT PRIMARY KEY NOT NULL,
    mode                  TEXT NOT NULL CHECK (mode IN ('prepaid', 'postpaid')),
    since                 INTEGER NOT NULL,
    -- when the consumer became prepaid by migration (grace period), if so
    migrated_at           INTEGER,
    -- the last recharge: its amount and the ledger entry number, which names the alert cycle
    last_recharge         INTEGER NOT NULL DEFAULT 0,
    cycle                 INTEGER NOT NULL DEFAULT 0,
    -- emergency credit granted and not yet recovered, and until when it protects the supply
    emergency_outstanding INTEGER NOT NULL DEFAULT 0,
    emergency_until       INTEGER,
    emergency_grants      INTEGER NOT NULL DEFAULT 0,
    updated_at            INTEGER NOT NULL
);

CREATE INDEX wallet_short ON wallet (balance);

-- Every payment confirmation the gateway sent, kept whole before anything is done with it, so
-- nothing is lost: credited, refused by the utility's rules (to be refunded), or unmatched
-- (no such prepaid consumer; for reconciliation).
CREATE TABLE payment (
    gateway      TEXT NOT NULL,
    payment_id   TEXT NOT NULL,
    consumer_no  TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('received', 'credited', 'refused', 'unmatched')),
    reason       TEXT,
    body         TEXT NOT NULL,
    paid_at      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    settled_at   INTEGER,
    -- the balance after the credit
    balance      INTEGER,
    PRIMARY KEY (gateway, payment_id)
);
CREATE INDEX payment_of_consumer ON payment (consumer_no, received_at);
-- confirmations kept but not settled (a crash between the two), looked for every half minute
CREATE INDEX payment_unsettled ON payment (received_at) WHERE status = 'received';

-- Low-balance alerts sent, at most once per threshold per recharge cycle.
CREATE TABLE low_balance_alert (
    consumer_no TEXT NOT NULL,
    cycle       INTEGER NOT NULL,
    percent     INTEGER NOT NULL,
    balance     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (consumer_no, cycle, percent)
);

-- A connection whose balance fell short: warned, disconnected through the head-end with the
-- relay confirmed, and reconnected after a recharge (target minutes, limit 2 hours).
-- state: 'short' (below the threshold; warned or waiting for the end of a protected window)
--      → 'disconnecting' (command sent) → 'disconnected' (relay confirmed open)
--      → 'reconnecting' (command sent) → 'closed' (relay confirmed closed, or recharged in time)
CREATE TABLE supply_case (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_no        TEXT NOT NULL,
    meter              TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN
                         ('short', 'disconnecting', 'disconnected', 'reconnecting', 'closed')),
    opened_at          INTEGER NOT NULL,
    balance_at_open    INTEGER NOT NULL,
    warned_at          INTEGER,
    disconnect_from    INTEGER,
    disconnect_command TEXT,
    disconnect_sent_at INTEGER,
    disconnected_at    INTEGER,
    recharged_at       INTEGER,
    reconnect_due_by   INTEGER,
    reconnect_command  TEXT,
    reconnect_sent_at  INTEGER,
    reconnected_at     INTEGER,
    attempts           INTEGER NOT NULL DEFAULT 0,
    closed_at          INTEGER,
    outcome            TEXT,
    last_error         TEXT,
    updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX supply_case_open ON supply_case (consumer_no) WHERE state <> 'closed';
-- the engine looks at the cases in each state every few seconds; closed ones pile up
CREATE INDEX supply_case_state ON supply_case (state, id);

-- Postpaid → prepaid (use case 13) and back (14): an ordered list of head-end steps (reads,
-- switch, payment mode), each a command whose outcome is logged before the next is sent.
-- state: 'requested' → 'running' → 'completed' | 'failed'
CREATE TABLE mode_migration (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_no    TEXT NOT NULL,
    meter          TEXT NOT NULL,
    target         TEXT NOT NULL CHECK (target IN ('prepaid', 'postpaid')),
    state          TEXT NOT NULL CHECK (state IN ('requested', 'running', 'completed', 'failed')),
    -- to prepaid: the opening balance (deposit less arrears); to postpaid: the closing balance
    balance        INTEGER NOT NULL,
    requested_by   TEXT NOT NULL,
    requested_at   INTEGER NOT NULL,
    -- the step under way (0-based) and its command
    step           INTEGER NOT NULL DEFAULT 0,
    command        TEXT,
    -- JSON array: each step's name, command, state and what the meter answered
    log            TEXT NOT NULL DEFAULT '[]',
    completed_at   INTEGER,
    last_error     TEXT,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX mode_migration_open ON mode_migration (consumer_no)
    WHERE state NOT IN ('completed', 'failed');
-- the migrations in progress, followed every few seconds
CREATE INDEX mode_migration_active ON mode_migration (id)
    WHERE state NOT IN ('completed', 'failed');
