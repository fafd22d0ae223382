-- Library: tracks found in the music folder, virtual folders, memberships, scan errors.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per audio file ever seen. Rows are never deleted by a scan: a vanished file is
-- marked missing so its id and memberships survive until it returns.
CREATE TABLE tracks (
    id           INTEGER PRIMARY KEY,
    relpath      BLOB    NOT NULL UNIQUE,  -- raw path bytes relative to MUSIC_DIR (may be non-UTF-8)
    filepath     TEXT    NOT NULL,         -- relpath for display (lossy UTF-8)
    filename     TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    artist       TEXT,
    album        TEXT,
    track_number INTEGER,
    disc_number  INTEGER,
    duration_ms  INTEGER NOT NULL,
    format       TEXT    NOT NULL,
    bitrate      INTEGER,                  -- kbit/s
    sample_rate  INTEGER,                  -- Hz
    channels     INTEGER,
    file_size    INTEGER NOT NULL,         -- bytes
    mtime_ns     INTEGER NOT NULL,         -- file modification time, ns since the epoch
    has_cover    INTEGER NOT NULL DEFAULT 0,
    fingerprint  TEXT    NOT NULL,         -- content hash, used to follow moves and renames
    missing      INTEGER NOT NULL DEFAULT 0,
    added_at     INTEGER NOT NULL,         -- ms since the epoch
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX tracks_fingerprint ON tracks(fingerprint);
CREATE INDEX tracks_title ON tracks(title COLLATE NOCASE);
CREATE INDEX tracks_artist ON tracks(artist COLLATE NOCASE);
CREATE INDEX tracks_album ON tracks(album COLLATE NOCASE);
CREATE INDEX tracks_filepath ON tracks(filepath);

CREATE VIRTUAL TABLE tracks_fts USING fts5(
    title, artist, album, filename,
    content = 'tracks', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER tracks_ai AFTER INSERT ON tracks BEGIN
    INSERT INTO tracks_fts(rowid, title, artist, album, filename)
    VALUES (new.id, new.title, new.artist, new.album, new.filename);
END;
CREATE TRIGGER tracks_ad AFTER DELETE ON tracks BEGIN
    INSERT INTO tracks_fts(tracks_fts, rowid, title, artist, album, filename)
    VALUES ('delete', old.id, old.title, old.artist, old.album, old.filename);
END;
CREATE TRIGGER tracks_au AFTER UPDATE OF title, artist, album, filename ON tracks BEGIN
    INSERT INTO tracks_fts(tracks_fts, rowid, title, artist, album, filename)
    VALUES ('delete', old.id, old.title, old.artist, old.album, old.filename);
    INSERT INTO tracks_fts(rowid, title, artist, album, filename)
    VALUES (new.id, new.title, new.artist, new.album, new.filename);
END;

CREATE TABLE folders (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    parent_id  INTEGER REFERENCES folders(id) ON DELETE CASCADE,
    sort_order INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX folders_parent ON folders(parent_id);

-- Many-to-many: a track can sit in many folders, at a position inside each.
CREATE TABLE track_folders (
    track_id  INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    PRIMARY KEY (folder_id, track_id)
) STRICT;
CREATE INDEX track_folders_track ON track_folders(track_id);
CREATE INDEX track_folders_position ON track_folders(folder_id, position);

-- Files the last scan could not read, with the reason.
CREATE TABLE scan_errors (
    relpath  BLOB NOT NULL PRIMARY KEY,
    filepath TEXT NOT NULL,
    reason   TEXT NOT NULL,
    at       INTEGER NOT NULL
) STRICT;

-- The live room's persisted state (one JSON document per room).
CREATE TABLE room_state (
    room  TEXT PRIMARY KEY,
    state TEXT NOT NULL
) STRICT;
