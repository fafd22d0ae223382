-- Device checks: what the `/check` page measured on one device (`device_check::CheckReport`
-- as JSON), the newest few hundred.
CREATE TABLE device_checks (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    report      TEXT    NOT NULL
) STRICT;
