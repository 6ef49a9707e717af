-- 0014: customer care (use cases 19 and 20) and the delivery of routed messages to external
-- systems' webhooks.

-- The kinds of service request and the natures of complaint, as data: the SLA in hours, the
-- destination a case is routed to (`oms`, `wfm`, `cis`, `billing`, `crm`; NULL: handled at the
-- desk), the consumer record field a resolution changes (`name`, `address`, `contact`, `load`,
-- `category`; NULL: none) and how many days after closing a case may be reopened.
CREATE TABLE care_type (
    kind        TEXT NOT NULL CHECK (kind IN ('service_request', 'complaint')),
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    sla_hours   INTEGER NOT NULL CHECK (sla_hours > 0),
    route       TEXT,
    applies     TEXT,
    reopen_days INTEGER NOT NULL CHECK (reopen_days >= 0),
    PRIMARY KEY (kind, code)
);

-- The last number handed out per kind and (IST) year: SR-2026-000123, CR-2026-000001.
CREATE TABLE care_number (
    kind TEXT NOT NULL,
    year INTEGER NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (kind, year)
);

-- A service request or complaint. `change` is the consumer record change (JSON) a resolution
-- applies; `meter` the consumer's meter when it was registered (routed messages name one);
-- `reopened` counts reopenings (each routes again and closes again under its own key).
CREATE TABLE care_case (
    number      TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    consumer_no TEXT NOT NULL,
    type_code   TEXT NOT NULL,
    description TEXT NOT NULL,
    change      TEXT,
    state       TEXT NOT NULL
                CHECK (state IN ('open', 'in_progress', 'resolved', 'closed', 'rejected')),
    route       TEXT,
    meter       TEXT NOT NULL,
    opened_by   TEXT NOT NULL,
    opened_at   INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    resolved_at INTEGER,
    closed_at   INTEGER,
    reopened    INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (kind, type_code) REFERENCES care_type (kind, code)
);
CREATE INDEX care_case_by_consumer ON care_case (consumer_no, opened_at);
CREATE INDEX care_case_by_kind ON care_case (kind, opened_at);

-- Every step of a case: who, when, what, the state after, and their note.
CREATE TABLE care_update (
    number TEXT NOT NULL REFERENCES care_case (number),
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    by     TEXT NOT NULL,
    action TEXT NOT NULL,
    state  TEXT NOT NULL,
    note   TEXT NOT NULL,
    PRIMARY KEY (number, seq)
);

-- Outbound webhooks: how far each subscriber (named in webhooks.json) has taken routed
-- messages in, and each message's delivery to it.
CREATE TABLE webhook_cursor (
    subscriber TEXT PRIMARY KEY NOT NULL,
    last_seq   INTEGER NOT NULL
);

CREATE TABLE webhook_delivery (
    subscriber      TEXT NOT NULL,
    routed_seq      INTEGER NOT NULL REFERENCES routed_message (seq),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER,
    PRIMARY KEY (subscriber, routed_seq)
);
CREATE INDEX webhook_delivery_due ON webhook_delivery (subscriber, next_attempt_at)
    WHERE state = 'pending';
