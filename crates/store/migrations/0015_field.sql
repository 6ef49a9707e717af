-- 0015: field operations and the consumer record (issue 7): work orders, new connections, the
-- history of a consumer's record, and how far the built-in WFM has read its notices.

-- A work order: what a crew is sent to do (install a meter, inspect a tamper, replace a meter,
-- reconnect by hand) and what they found. `source_key` is what caused it (a routed notice, a
-- connection request), so the same cause makes one order.
CREATE TABLE work_order (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN
                      ('installation', 'tamper_inspection', 'meter_replacement', 'manual_reconnect')),
    state         TEXT NOT NULL CHECK (state IN
                      ('open', 'assigned', 'completed', 'resolved', 'cancelled')),
    source_key    TEXT UNIQUE,
    consumer_no   TEXT,
    meter         TEXT,
    address       TEXT NOT NULL,
    -- JSON: the tamper code and description, the connection request, ...
    detail        TEXT NOT NULL,
    assigned_to   TEXT,
    due_at        INTEGER NOT NULL,
    -- JSON: the field completion report
    report        TEXT,
    -- JSON array: each step (state, who, when, note)
    log           TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX work_order_by_state ON work_order (state, due_at);
CREATE INDEX work_order_of_consumer ON work_order (consumer_no, id);

-- A new connection (use case 12) from request to confirmation, each step logged.
CREATE TABLE connection_request (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_no   TEXT NOT NULL UNIQUE,
    -- JSON: name, address, category, sanctioned load, scheme, contacts, transformer, source
    request       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN
                      ('installation_ordered', 'reading', 'confirmed', 'failed')),
    work_order    INTEGER REFERENCES work_order (id),
    meter         TEXT,
    initial_wh    INTEGER,
    -- JSON: the verification reads' command ids
    commands      TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    log           TEXT NOT NULL,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX connection_request_reading ON connection_request (state) WHERE state = 'reading';

-- Every change to a consumer's details (name, category, net metering), as it was before and
-- after, whoever made it.
CREATE TABLE consumer_change (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_no  TEXT NOT NULL,
    at           INTEGER NOT NULL,
    before       TEXT,
    after        TEXT NOT NULL
);
CREATE INDEX consumer_change_of ON consumer_change (consumer_no, seq);
CREATE TRIGGER consumer_added AFTER INSERT ON consumer BEGIN
    INSERT INTO consumer_change (consumer_no, at, before, after) VALUES (NEW.consumer_no,
        NEW.created_at, NULL,
        json_object('name', NEW.name, 'category', NEW.category, 'net_metered', NEW.net_metered));
END;
CREATE TRIGGER consumer_changed AFTER UPDATE ON consumer
    WHEN OLD.name IS NOT NEW.name OR OLD.category IS NOT NEW.category
        OR OLD.net_metered IS NOT NEW.net_metered
BEGIN
    INSERT INTO consumer_change (consumer_no, at, before, after) VALUES (NEW.consumer_no,
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
        json_object('name', OLD.name, 'category', OLD.category, 'net_metered', OLD.net_metered),
        json_object('name', NEW.name, 'category', NEW.category, 'net_metered', NEW.net_metered));
END;

-- Readers of routed notices go by destination and sequence (the pending index covers only
-- what is undelivered).
CREATE INDEX routed_message_by_destination ON routed_message (destination, seq);

-- How far a reader of routed notices has read (the built-in WFM reads `wfm`).
CREATE TABLE notice_cursor (
    reader  TEXT PRIMARY KEY NOT NULL,
    seq     INTEGER NOT NULL
);
