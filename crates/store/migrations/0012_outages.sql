-- 0012: outages (use cases 7.3–7.5). Power-off and power-on observations of meters (last gasp,
-- first breath, power-fail events 101/102), kept once each, and the outages they are grouped
-- into: one per DT, feeder or lone meter that lost supply together.

-- `power` is 'off' or 'on'; `source` says what told (last_gasp, first_breath, event_101, …).
-- `grouped` is 0 while the observation waits for the outage desk (its window still open), 1
-- once the desk has taken it into an outage or found it told nothing new.
CREATE TABLE power_observation (
    meter       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    power       TEXT NOT NULL CHECK (power IN ('off', 'on')),
    source      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    grouped     INTEGER NOT NULL DEFAULT 0 CHECK (grouped IN (0, 1)),
    PRIMARY KEY (meter, at, power)
);
CREATE INDEX power_observation_waiting ON power_observation (meter) WHERE grouped = 0;

-- One outage: `level` 'dt', 'feeder' or 'meter'; `node` the DT or feeder id, or the meter's
-- serial. `dt` and `feeder` are where its first meter hangs (for late reports to find it).
-- `state` 'active' (no meter back), 'partial' (some back), 'restored' (all back; restored_at
-- is when the last came back). `meters`/`meters_on`: meters in it and those back.
CREATE TABLE outage (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    level        TEXT NOT NULL CHECK (level IN ('dt', 'feeder', 'meter')),
    node         TEXT NOT NULL,
    dt           TEXT,
    feeder       TEXT,
    started_at   INTEGER NOT NULL,
    restored_at  INTEGER,
    state        TEXT NOT NULL CHECK (state IN ('active', 'partial', 'restored')),
    meters       INTEGER NOT NULL,
    meters_on    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX outage_by_state ON outage (state, id);
CREATE INDEX outage_by_restored ON outage (restored_at);

-- A meter in an outage: when it went off and came back, and how many times each was seen
-- (a meter that flickers during the outage counts more than one).
CREATE TABLE outage_meter (
    meter       TEXT NOT NULL,
    outage      INTEGER NOT NULL REFERENCES outage (id),
    off_at      INTEGER NOT NULL,
    on_at       INTEGER,
    power_offs  INTEGER NOT NULL,
    power_ons   INTEGER NOT NULL,
    PRIMARY KEY (meter, outage)
);
CREATE INDEX outage_meter_by_outage ON outage_meter (outage, meter);
