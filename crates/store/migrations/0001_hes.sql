-- 0001: the head-end's tables (issue 3).
--
-- Portable on purpose (a PostgreSQL schema follows with the same tests): times are integer
-- milliseconds since the Unix epoch (UTC), every key leads with the meter, upserts are written as
-- `INSERT … ON CONFLICT … DO …`. Surrogate ids (gaps, outbox) are ordinary columns the API hands
-- out, never `rowid` semantics; on PostgreSQL they become identity columns.

-- Free-form settings of the installation (e.g. the master-key fingerprint).
CREATE TABLE setting (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Data concentrators (and other parents of meters in the network hierarchy).
CREATE TABLE dcu (
    id         TEXT PRIMARY KEY NOT NULL,
    host       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The head-end's meter registry.
CREATE TABLE meter (
    serial         TEXT PRIMARY KEY NOT NULL,
    kind           TEXT NOT NULL,
    host           TEXT NOT NULL,
    port           INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    transport      TEXT NOT NULL,
    server_address INTEGER NOT NULL CHECK (server_address BETWEEN 0 AND 65535),
    dcu            TEXT REFERENCES dcu (id),
    meter_group    TEXT NOT NULL,
    system_title   BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- end of the last successful session in which the meter answered
    last_contact   INTEGER,
    -- the head-end's next invocation counter for this meter when its last session ended
    invocation_counter INTEGER
);

-- First contact of a new meter and moves to another address or DCU (use case 11).
CREATE TABLE network_change (
    meter  TEXT NOT NULL REFERENCES meter (serial),
    n      INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    change TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (meter, n)
);
CREATE INDEX network_change_at ON network_change (at);

-- Sealed (encrypted under the master key) key sets per meter, by version.
-- state: 'staged' | 'active' | 'retired'; at most one active per meter.
CREATE TABLE meter_keys (
    meter        TEXT NOT NULL REFERENCES meter (serial),
    version      INTEGER NOT NULL CHECK (version > 0),
    sealed       BLOB NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('staged', 'active', 'retired')),
    staged_at    INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER,
    PRIMARY KEY (meter, version)
);
CREATE UNIQUE INDEX meter_keys_one_active ON meter_keys (meter) WHERE state = 'active';

-- How far each profile of each meter has been collected (interval end, only moves forward).
CREATE TABLE collection_cursor (
    meter   TEXT NOT NULL REFERENCES meter (serial),
    profile TEXT NOT NULL,
    up_to   INTEGER NOT NULL,
    PRIMARY KEY (meter, profile)
);

-- Ranges of a profile that were not collected. state: 'open' | 'filled' | 'explained' |
-- 'unrecoverable'.
CREATE TABLE gap (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    meter       TEXT NOT NULL REFERENCES meter (serial),
    profile     TEXT NOT NULL,
    from_at     INTEGER NOT NULL,
    to_at       INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'filled', 'explained', 'unrecoverable')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    reason      TEXT,
    detected_at INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK (from_at <= to_at)
);
CREATE INDEX gap_by_meter ON gap (meter, profile, state, from_at);
CREATE INDEX gap_by_detected ON gap (detected_at);

-- One row per session with a meter (its outcome). Bounded by purge_attempts.
CREATE TABLE attempt (
    meter          TEXT NOT NULL REFERENCES meter (serial),
    job            TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER NOT NULL,
    ok             INTEGER NOT NULL CHECK (ok IN (0, 1)),
    failure_kind   TEXT,
    failure_detail TEXT,
    contacted      INTEGER NOT NULL CHECK (contacted IN (0, 1))
);
CREATE INDEX attempt_by_meter ON attempt (meter, job, started_at);
CREATE INDEX attempt_by_started ON attempt (started_at);

-- The durable outbox: messages written in the same transaction as the state they describe,
-- relayed to the bus, then marked delivered. Idempotent by key.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered_at IS NULL;
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;

-- Commands to meters (request and result are the head-end's JSON), idempotent by id.
CREATE TABLE command (
    meter        TEXT NOT NULL REFERENCES meter (serial),
    id           TEXT NOT NULL UNIQUE,
    batch        TEXT,
    kind         TEXT NOT NULL,
    request      TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    result       TEXT,
    requested_by TEXT NOT NULL,
    PRIMARY KEY (meter, id)
);
CREATE INDEX command_by_state ON command (state, created_at);
CREATE INDEX command_by_batch ON command (batch, created_at) WHERE batch IS NOT NULL;

-- Every state a command went through, in order.
CREATE TABLE command_audit (
    meter   TEXT NOT NULL,
    command TEXT NOT NULL,
    n       INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    state   TEXT NOT NULL,
    detail  TEXT NOT NULL,
    PRIMARY KEY (meter, command, n),
    FOREIGN KEY (meter, command) REFERENCES command (meter, id)
);
