-- 0003: API tokens (issue 4, the REST API). A token is 32 random bytes given to its holder once;
-- only its SHA-256 is kept (the token has full entropy, so a fast hash is enough and a salt
-- adds nothing). Same rules as 0001: integer milliseconds (UTC), portable SQL.
--
-- role: 'admin' | 'operator' | 'reader'. A token is valid while it is neither revoked nor
-- expired (expires_at NULL: it does not expire). Revoked tokens are kept for the record.
CREATE TABLE api_token (
    id         TEXT PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role       TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'reader')),
    label      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
