-- 0006: notifications to consumers (SMS and email) and where to send them.

-- A consumer's addresses. Either may be missing: a consumer without an email gets SMS only.
CREATE TABLE consumer_contact (
    consumer_no TEXT PRIMARY KEY NOT NULL,
    mobile      TEXT,   -- +91 and ten digits
    email       TEXT,
    updated_at  INTEGER NOT NULL
);

-- The outbox: one row per (consumer, notice, channel), written once per key; the dispatcher sends what is
-- due, retries with backoff and gives up after a few attempts (state 'failed', with the error).
-- state: 'pending' → 'sent' | 'failed'
CREATE TABLE notification (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    consumer_no     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    provider_id     TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    UNIQUE (consumer_no, key, channel)
);
CREATE INDEX notification_due ON notification (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notification_of_consumer ON notification (consumer_no, seq);
