-- 0002: the MDM's tables (issue 4): readings with quality flags and versions, events, the VEE
-- exception queue, edits and their audit trail, VEE state per meter, routed messages.
--
-- Same rules as 0001: integer milliseconds (UTC), keys lead with the meter, portable SQL. The
-- MDM does not reference the head-end's registry: in a split deployment they are separate
-- databases, and the MDM accepts data for a meter before any registry knows it.

-- Block-load intervals: the value in force per (meter, interval end), every channel. `version`
-- is 1 for the first value and grows by one each time an estimate, an actual or an edit
-- replaces it; the replaced row moves to interval_history, so nothing is ever destroyed.
-- quality: bit set (1 clock invalid, 2 clock doubtful, 4 partial interval, 8 estimated,
-- 16 edited, 32 suspect); method: how an estimate was made, or 'edit'.
CREATE TABLE interval_reading (
    meter        TEXT NOT NULL,
    interval_end INTEGER NOT NULL,
    version      INTEGER NOT NULL CHECK (version > 0),
    import_wh    INTEGER NOT NULL,
    import_vah   INTEGER NOT NULL,
    export_wh    INTEGER,
    export_vah   INTEGER,
    voltage_v    REAL,
    current_a    REAL,
    voltage_r_v  REAL,
    voltage_y_v  REAL,
    voltage_b_v  REAL,
    current_r_a  REAL,
    current_y_a  REAL,
    current_b_a  REAL,
    quality      INTEGER NOT NULL,
    method       TEXT,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (meter, interval_end)
) WITHOUT ROWID;

-- Every replaced version of an interval, with when it was replaced.
CREATE TABLE interval_history (
    meter        TEXT NOT NULL,
    interval_end INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    import_wh    INTEGER NOT NULL,
    import_vah   INTEGER NOT NULL,
    export_wh    INTEGER,
    export_vah   INTEGER,
    voltage_v    REAL,
    current_a    REAL,
    voltage_r_v  REAL,
    voltage_y_v  REAL,
    voltage_b_v  REAL,
    current_r_a  REAL,
    current_y_a  REAL,
    current_b_a  REAL,
    quality      INTEGER NOT NULL,
    method       TEXT,
    received_at  INTEGER NOT NULL,
    replaced_at  INTEGER NOT NULL,
    PRIMARY KEY (meter, interval_end, version)
) WITHOUT ROWID;

-- Readings of an interval that arrived while a different actual or edited value was in force:
-- kept whole, not in force (the exception queue says so once per interval). The same second
-- reading again is one row.
CREATE TABLE interval_overlap (
    meter        TEXT NOT NULL,
    interval_end INTEGER NOT NULL,
    import_wh    INTEGER NOT NULL,
    import_vah   INTEGER NOT NULL,
    export_wh    INTEGER,
    export_vah   INTEGER,
    voltage_v    REAL,
    current_a    REAL,
    voltage_r_v  REAL,
    voltage_y_v  REAL,
    voltage_b_v  REAL,
    current_r_a  REAL,
    current_y_a  REAL,
    current_b_a  REAL,
    quality      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (meter, interval_end, import_wh, import_vah)
) WITHOUT ROWID;

-- Who changed an interval by hand, and why (the edit is the version it created).
CREATE TABLE interval_edit (
    meter        TEXT NOT NULL,
    interval_end INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    edited_by    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    edited_at    INTEGER NOT NULL,
    PRIMARY KEY (meter, interval_end, version)
);

-- Each meter's block-load capture period as its data shows it (15 or 30 minutes).
CREATE TABLE meter_capture (
    meter      TEXT PRIMARY KEY NOT NULL,
    period_s   INTEGER NOT NULL CHECK (period_s > 0),
    updated_at INTEGER NOT NULL
);

-- Midnight snapshots of the cumulative registers (daily load profile).
CREATE TABLE daily_reading (
    meter       TEXT NOT NULL,
    captured_at INTEGER NOT NULL,
    import_wh   INTEGER NOT NULL,
    import_vah  INTEGER NOT NULL,
    export_wh   INTEGER,
    export_vah  INTEGER,
    quality     INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, captured_at)
) WITHOUT ROWID;

-- Billing profile rows and instantaneous snapshots, kept whole (the model's JSON).
CREATE TABLE billing_reading (
    meter        TEXT NOT NULL,
    billing_date INTEGER NOT NULL,
    reading      TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (meter, billing_date)
);

CREATE TABLE instantaneous_reading (
    meter       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    reading     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, at)
);

-- Meter events, normalised: category and severity from the MDM's catalogue.
CREATE TABLE meter_event (
    meter       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    code        INTEGER NOT NULL,
    category    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- the MDM's class: tamper, outage, load_violation, relay, voltage_quality, …
    class       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    description TEXT NOT NULL,
    quality     INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, at, code)
);
CREATE INDEX meter_event_by_at ON meter_event (at);

-- Failed validations for people to work through. The same finding twice is one row.
-- state: 'open' | 'resolved' | 'dismissed'.
CREATE TABLE vee_exception (
    meter       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    from_end    INTEGER NOT NULL,
    to_end      INTEGER NOT NULL,
    severity    TEXT NOT NULL,
    detail      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'resolved', 'dismissed')),
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER,
    closed_by   TEXT,
    note        TEXT,
    PRIMARY KEY (meter, rule, from_end, to_end)
);
CREATE INDEX vee_exception_open ON vee_exception (state, created_at);

-- What VEE remembers of each meter's past (its history summary, JSON).
CREATE TABLE vee_state (
    meter      TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Intervals the head-end reports the meter does not have, and why (power off, given up).
CREATE TABLE missed_interval (
    meter       TEXT NOT NULL,
    profile     TEXT NOT NULL,
    from_end    INTEGER NOT NULL,
    to_end      INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, profile, from_end, to_end)
);

-- Push alerts as the head-end decoded them, and outages seen at once (last gasp, first breath).
CREATE TABLE alarm (
    meter       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, at, kind)
);

-- Final results of commands to meters (the head-end's JSON outcome).
CREATE TABLE command_result (
    meter        TEXT NOT NULL,
    command      TEXT NOT NULL,
    command_kind TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (meter, command)
);

-- Messages that could not be taken in (kept whole for a person, never dropped).
CREATE TABLE dead_letter (
    key         TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    meter       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    error       TEXT NOT NULL,
    received_at INTEGER NOT NULL
);

-- Messages the MDM routes to the parts that act on them (site inspection, OMS, billing),
-- written with the data that caused them and delivered later. Idempotent by key.
CREATE TABLE routed_message (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL UNIQUE,
    meter        TEXT NOT NULL,
    destination  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX routed_message_pending ON routed_message (destination, seq) WHERE delivered_at IS NULL;

-- The network hierarchy: substation → feeder → distribution transformer → DCU → meter. Nodes
-- are named once; who is whose parent is kept over time ([valid_from, valid_to), valid_to NULL
-- while in force), so history stays right after a meter moves or a feeder is re-arranged.
CREATE TABLE network_node (
    id   TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('substation', 'feeder', 'transformer', 'dcu')),
    name TEXT NOT NULL
);

-- child_kind 'meter' links a meter (by serial) to its DCU or transformer.
CREATE TABLE network_link (
    child_kind TEXT NOT NULL CHECK (child_kind IN ('feeder', 'transformer', 'dcu', 'meter')),
    child      TEXT NOT NULL,
    valid_from INTEGER NOT NULL,
    valid_to   INTEGER,
    parent     TEXT NOT NULL REFERENCES network_node (id),
    PRIMARY KEY (child_kind, child, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX network_link_by_parent ON network_link (parent, valid_from);

-- Consumers, the service points (premises) they are connected at, and the meters installed
-- there, each relation over time.
CREATE TABLE consumer (
    consumer_no TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    -- tariff / VEE category: 'residential', 'commercial', 'industrial', 'agricultural', …
    category    TEXT NOT NULL,
    net_metered INTEGER NOT NULL CHECK (net_metered IN (0, 1)),
    created_at  INTEGER NOT NULL
);

CREATE TABLE service_point (
    id                TEXT PRIMARY KEY NOT NULL,
    address           TEXT NOT NULL,
    sanctioned_load_w INTEGER NOT NULL
);

CREATE TABLE service_point_consumer (
    service_point TEXT NOT NULL REFERENCES service_point (id),
    valid_from    INTEGER NOT NULL,
    valid_to      INTEGER,
    consumer_no   TEXT NOT NULL REFERENCES consumer (consumer_no),
    PRIMARY KEY (service_point, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX service_point_consumer_by_consumer ON service_point_consumer (consumer_no);

CREATE TABLE meter_installation (
    meter         TEXT NOT NULL,
    valid_from    INTEGER NOT NULL,
    valid_to      INTEGER,
    service_point TEXT NOT NULL REFERENCES service_point (id),
    PRIMARY KEY (meter, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX meter_installation_by_service_point ON meter_installation (service_point);
