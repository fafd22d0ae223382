-- Rooms: each table of a club or a convention has its own stage, stream and GM key. The
-- room `main` is made at start when missing; its saved stage is `room_state`'s row `main`.
CREATE TABLE rooms (
    slug       TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    gm_key     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
