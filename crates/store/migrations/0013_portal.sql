-- 0013: the consumer portal's registration (use case 15), its accounts and sessions; the
-- language a consumer is told things in; secrets in the notification outbox; the delivery log.

-- 'en' (the default) or 'hi'.
ALTER TABLE consumer_contact ADD COLUMN language TEXT NOT NULL DEFAULT 'en'
    CHECK (language IN ('en', 'hi'));

-- A message that carries a secret (a one-time code, a default password): its body is withheld
-- from the API and blanked once the message is delivered or given up.
ALTER TABLE notification ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0;

-- Every attempt to deliver a message, with its result ('sent', 'retry', 'failed').
CREATE TABLE notification_attempt (
    seq     INTEGER NOT NULL REFERENCES notification (seq),
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    detail  TEXT NOT NULL,
    PRIMARY KEY (seq, attempt)
);

-- A registration's one-time code. Every request makes one, whether or not the consumer number
-- and the address matched (consumer_no NULL: nothing is sent, and no code can ever verify), so
-- the answers do not tell which numbers exist. The code is kept only as an Argon2 hash.
-- state: 'open' → 'verified' | 'dead' (too many wrong codes).
CREATE TABLE portal_challenge (
    id          TEXT PRIMARY KEY NOT NULL,
    asked_no    TEXT NOT NULL,   -- the consumer number asked for, as given
    address     TEXT NOT NULL,   -- the mobile or email asked for, normalised
    channel     TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    consumer_no TEXT,            -- set when the number and the address matched
    code_hash   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'verified', 'dead')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    sent_at     INTEGER NOT NULL  -- the last (re)send
);

-- Each code sent (or, for an unmatched request, not sent but counted alike), for the limit of
-- sends per hour to one consumer number and address.
CREATE TABLE portal_code_send (
    asked_no     TEXT NOT NULL,
    address      TEXT NOT NULL,
    at           INTEGER NOT NULL,
    challenge_id TEXT NOT NULL REFERENCES portal_challenge (id)
);
CREATE INDEX portal_code_send_by_address ON portal_code_send (asked_no, address, at);

-- A consumer's portal account: the login id, an Argon2 hash of the password, whether it is
-- still the default one sent at registration, and the failed logins since the last success.
CREATE TABLE portal_account (
    consumer_no         TEXT PRIMARY KEY NOT NULL,
    login_id            TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    must_change         INTEGER NOT NULL,
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    locked_until        INTEGER,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

-- A logged-in consumer: like api_token, only the SHA-256 of the secret is kept.
CREATE TABLE portal_session (
    id          TEXT PRIMARY KEY NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    consumer_no TEXT NOT NULL REFERENCES portal_account (consumer_no),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX portal_session_of_consumer ON portal_session (consumer_no);
