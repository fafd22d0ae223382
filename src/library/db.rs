//! Every SQL statement of the server lives here.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::error::{Error, Result};
use super::model::{Folder, FolderPatch, Page, ScanError, Track, TrackQuery, TrackSort, MAX_PAGE_LIMIT};
use crate::device_check::{CheckReport, StoredCheck, KEPT_CHECKS};
use crate::ids::{FolderId, SceneId, TrackId};
use crate::scene::{
    FolderRefInfo, Scene, SceneExport, SceneSpec, TrackRefInfo, EXPORT_FORMAT, EXPORT_VERSION, MAX_SCENES,
};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_loudness.sql"),
    include_str!("migrations/0003_scenes.sql"),
    include_str!("migrations/0004_device_checks.sql"),
    include_str!("migrations/0005_rooms.sql"),
];

/// Columns selected for a [`Track`], in the order [`track_from_row`] reads them.
const TRACK_COLUMNS: &str = "t.id, t.filepath, t.filename, t.title, t.artist, t.album, \
    t.track_number, t.disc_number, t.duration_ms, t.format, t.bitrate, t.sample_rate, \
    t.channels, t.file_size, t.missing, t.has_cover, t.loudness_lufs";

/// Columns a scan writes for a file, in the order [`ScannedFile::values`] gives them.
const SCANNED_COLUMNS: [&str; 17] = [
    "relpath",
    "filepath",
    "filename",
    "title",
    "artist",
    "album",
    "track_number",
    "disc_number",
    "duration_ms",
    "format",
    "bitrate",
    "sample_rate",
    "channels",
    "file_size",
    "mtime_ns",
    "has_cover",
    "fingerprint",
];

/// A room as saved: see [`crate::rooms`].
#[derive(Debug, Clone, PartialEq)]
pub struct RoomRow {
    pub slug: String,
    pub name: String,
    pub gm_key: String,
    /// Unix ms.
    pub created_at: i64,
}

/// The SQLite connection with the library's queries.
pub struct Db {
    conn: Connection,
}

/// What a scan knows about a file already in the database.
#[derive(Debug, Clone)]
pub struct KnownFile {
    pub id: TrackId,
    pub file_size: u64,
    pub mtime_ns: i64,
    pub missing: bool,
}

/// Tags and properties read from one audio file.
#[derive(Debug, Clone)]
pub struct ScannedFile {
    pub relpath: Vec<u8>,
    pub filepath: String,
    pub filename: String,
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub track_number: Option<u32>,
    pub disc_number: Option<u32>,
    pub duration_ms: u64,
    pub format: String,
    /// kbit/s
    pub bitrate: Option<u32>,
    /// Hz
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// bytes
    pub file_size: u64,
    pub mtime_ns: i64,
    pub has_cover: bool,
    pub fingerprint: String,
}

impl ScannedFile {
    /// The values of [`SCANNED_COLUMNS`], in order.
    fn values(&self) -> [Box<dyn rusqlite::ToSql + '_>; 17] {
        [
            Box::new(&self.relpath),
            Box::new(&self.filepath),
            Box::new(&self.filename),
            Box::new(&self.title),
            Box::new(&self.artist),
            Box::new(&self.album),
            Box::new(self.track_number),
            Box::new(self.disc_number),
            Box::new(self.duration_ms as i64),
            Box::new(&self.format),
            Box::new(self.bitrate),
            Box::new(self.sample_rate),
            Box::new(self.channels),
            Box::new(self.file_size as i64),
            Box::new(self.mtime_ns),
            Box::new(self.has_cover),
            Box::new(&self.fingerprint),
        ]
    }
}

/// A file the scan could not read.
#[derive(Debug, Clone)]
pub struct FailedFile {
    pub relpath: Vec<u8>,
    pub filepath: String,
    pub reason: String,
}

/// How one scanned file changed the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Added,
    Updated,
    /// A new path took over a missing track with the same content.
    Moved,
}

/// Where a track's bytes are.
#[derive(Debug, Clone)]
pub struct TrackSource {
    pub relpath: Vec<u8>,
    pub fingerprint: String,
    pub file_size: u64,
    pub mtime_ns: i64,
    pub format: String,
    pub missing: bool,
}

impl Db {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        Self::configure(conn)
    }

    fn configure(mut conn: Connection) -> rusqlite::Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Db { conn })
    }

    /// Records the loudness the cache measured for every track with this content.
    pub fn set_loudness(&self, fingerprint: &str, lufs: Option<f64>) -> rusqlite::Result<usize> {
        self.conn.execute("UPDATE tracks SET loudness_lufs = ?2 WHERE fingerprint = ?1", params![fingerprint, lufs])
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`; `Ok(())` when both are clean.
    pub fn check_integrity(&self) -> rusqlite::Result<std::result::Result<(), String>> {
        let status: String = self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if status != "ok" {
            return Ok(Err(status));
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        let violations = stmt.query_map([], |r| r.get::<_, String>(0))?.count();
        if violations > 0 {
            return Ok(Err(format!("{violations} foreign key violations")));
        }
        Ok(Ok(()))
    }

    // ---- settings and room state ----

    pub fn setting(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()
    }

    pub fn set_setting(&self, key: &str, value: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn room_state(&self, room: &str) -> rusqlite::Result<Option<String>> {
        self.conn.query_row("SELECT state FROM room_state WHERE room = ?1", [room], |r| r.get(0)).optional()
    }

    pub fn set_room_state(&self, room: &str, state: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO room_state(room, state) VALUES (?1, ?2)
             ON CONFLICT(room) DO UPDATE SET state = excluded.state",
            params![room, state],
        )?;
        Ok(())
    }

    // ---- rooms ----

    /// Every room, oldest first.
    pub fn rooms(&self) -> rusqlite::Result<Vec<RoomRow>> {
        let mut stmt =
            self.conn.prepare("SELECT slug, name, gm_key, created_at FROM rooms ORDER BY created_at, slug")?;
        let rows = stmt.query_map([], |r| {
            Ok(RoomRow { slug: r.get(0)?, name: r.get(1)?, gm_key: r.get(2)?, created_at: r.get(3)? })
        })?;
        rows.collect()
    }

    /// Adds a room; false if its slug is taken.
    pub fn insert_room(&self, room: &RoomRow) -> rusqlite::Result<bool> {
        let added = self.conn.execute(
            "INSERT INTO rooms(slug, name, gm_key, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(slug) DO NOTHING",
            params![room.slug, room.name, room.gm_key, room.created_at],
        )?;
        Ok(added == 1)
    }

    /// Changes a room's name and key; false if there is no such room.
    pub fn update_room(&self, slug: &str, name: &str, gm_key: &str) -> rusqlite::Result<bool> {
        Ok(self.conn.execute("UPDATE rooms SET name = ?2, gm_key = ?3 WHERE slug = ?1", params![slug, name, gm_key])?
            == 1)
    }

    /// Removes a room and its saved stage.
    pub fn delete_room(&self, slug: &str) -> rusqlite::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM rooms WHERE slug = ?1", [slug])?;
        tx.execute("DELETE FROM room_state WHERE room = ?1", [slug])?;
        tx.commit()
    }

    // ---- tracks ----

    /// One page of tracks, filtered by full-text search and folder.
    pub fn list_tracks(&self, q: &TrackQuery) -> Result<Page<Track>> {
        let limit = q.limit.clamp(1, MAX_PAGE_LIMIT);
        let page = q.page.max(1);
        let mut joins = String::new();
        let mut wheres: Vec<String> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let fts = q.search.as_deref().and_then(fts_query);
        if let Some(m) = &fts {
            joins.push_str(" JOIN tracks_fts ON tracks_fts.rowid = t.id");
            wheres.push("tracks_fts MATCH ?".into());
            args.push(m.clone().into());
        } else if q.search.as_deref().is_some_and(|s| !s.trim().is_empty()) {
            // Search text with no searchable characters matches nothing.
            wheres.push("0".into());
        }
        if let Some(f) = q.folder_id {
            joins.push_str(" JOIN track_folders tf ON tf.track_id = t.id");
            wheres.push("tf.folder_id = ?".into());
            args.push(f.0.into());
        }
        let where_sql = if wheres.is_empty() { String::new() } else { format!(" WHERE {}", wheres.join(" AND ")) };
        let order = match (q.sort, q.folder_id.is_some(), fts.is_some()) {
            (Some(s), _, _) => s.order_by(),
            (None, true, _) => "tf.position, t.id",
            (None, false, true) => "bm25(tracks_fts, 10.0, 5.0, 3.0, 1.0), t.id",
            (None, false, false) => TrackSort::Filepath.order_by(),
        };
        let total: u64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM tracks t{joins}{where_sql}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get::<_, i64>(0),
        )? as u64;
        let sql = format!("SELECT {TRACK_COLUMNS} FROM tracks t{joins}{where_sql} ORDER BY {order} LIMIT ? OFFSET ?");
        args.push((limit as i64).into());
        args.push((((page - 1) * limit) as i64).into());
        let mut stmt = self.conn.prepare(&sql)?;
        let items = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), track_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Page { items, total, page, limit })
    }

    pub fn track(&self, id: TrackId) -> Result<Track> {
        self.conn
            .query_row(&format!("SELECT {TRACK_COLUMNS} FROM tracks t WHERE t.id = ?1"), [id.0], track_from_row)
            .optional()?
            .ok_or(Error::NotFound("track"))
    }

    /// Several tracks by id, in the order asked; unknown ids are left out.
    pub fn tracks_by_id(&self, ids: &[TrackId]) -> Result<Vec<Track>> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {TRACK_COLUMNS} FROM tracks t WHERE t.id = ?1"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = stmt.query_row([id.0], track_from_row).optional()? {
                out.push(t);
            }
        }
        Ok(out)
    }

    pub fn track_source(&self, id: TrackId) -> Result<TrackSource> {
        self.conn
            .query_row(
                "SELECT relpath, fingerprint, file_size, mtime_ns, format, missing
                 FROM tracks WHERE id = ?1",
                [id.0],
                |r| {
                    Ok(TrackSource {
                        relpath: r.get(0)?,
                        fingerprint: r.get(1)?,
                        file_size: r.get::<_, i64>(2)? as u64,
                        mtime_ns: r.get(3)?,
                        format: r.get(4)?,
                        missing: r.get(5)?,
                    })
                },
            )
            .optional()?
            .ok_or(Error::NotFound("track"))
    }

    /// Ids of the tracks in a folder, in the folder's order.
    pub fn folder_track_ids(&self, folder: FolderId) -> Result<Vec<TrackId>> {
        self.folder_exists(folder)?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT track_id FROM track_folders WHERE folder_id = ?1 ORDER BY position, track_id")?;
        let ids = stmt.query_map([folder.0], |r| Ok(TrackId(r.get(0)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }

    // ---- folders ----

    /// Every folder as a tree of roots, each with its children, in `sort_order`.
    pub fn folder_tree(&self) -> Result<Vec<Folder>> {
        let mut stmt = self.conn.prepare(
            "SELECT f.id, f.name, f.parent_id, f.sort_order,
                    (SELECT COUNT(*) FROM track_folders tf WHERE tf.folder_id = f.id)
             FROM folders f ORDER BY f.sort_order, f.id",
        )?;
        let flat = stmt
            .query_map([], |r| {
                Ok(Folder {
                    id: FolderId(r.get(0)?),
                    name: r.get(1)?,
                    parent_id: r.get::<_, Option<i64>>(2)?.map(FolderId),
                    sort_order: r.get(3)?,
                    track_count: r.get::<_, i64>(4)? as u64,
                    children: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(build_tree(flat))
    }

    /// One folder with its sub-tree.
    pub fn folder(&self, id: FolderId) -> Result<Folder> {
        fn find(list: Vec<Folder>, id: FolderId) -> Option<Folder> {
            for f in list {
                if f.id == id {
                    return Some(f);
                }
                if let Some(found) = find(f.children, id) {
                    return Some(found);
                }
            }
            None
        }
        find(self.folder_tree()?, id).ok_or(Error::NotFound("folder"))
    }

    fn folder_exists(&self, id: FolderId) -> Result<()> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM folders WHERE id = ?1", [id.0], |r| r.get(0))?;
        if n == 0 {
            return Err(Error::NotFound("folder"));
        }
        Ok(())
    }

    pub fn create_folder(&mut self, name: &str, parent: Option<FolderId>) -> Result<Folder> {
        let tx = self.conn.transaction()?;
        if let Some(p) = parent {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM folders WHERE id = ?1", [p.0], |r| r.get(0))?;
            if n == 0 {
                return Err(Error::NotFound("parent folder"));
            }
        }
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(sort_order) + 1, 0) FROM folders WHERE parent_id IS ?1",
            [parent.map(|p| p.0)],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO folders(name, parent_id, sort_order) VALUES (?1, ?2, ?3)",
            params![name, parent.map(|p| p.0), next],
        )?;
        let id = FolderId(tx.last_insert_rowid());
        tx.commit()?;
        self.folder(id)
    }

    /// Renames, moves and reorders a folder. Moving it under itself or a descendant is a conflict.
    pub fn update_folder(&mut self, id: FolderId, patch: &FolderPatch) -> Result<Folder> {
        let tx = self.conn.transaction()?;
        let current_parent: Option<i64> = tx
            .query_row("SELECT parent_id FROM folders WHERE id = ?1", [id.0], |r| r.get(0))
            .optional()?
            .ok_or(Error::NotFound("folder"))?;
        if let Some(name) = &patch.name {
            tx.execute("UPDATE folders SET name = ?1 WHERE id = ?2", params![name, id.0])?;
        }
        let mut parent = current_parent;
        if let Some(new_parent) = patch.parent_id {
            if let Some(p) = new_parent {
                let exists: i64 = tx.query_row("SELECT COUNT(*) FROM folders WHERE id = ?1", [p.0], |r| r.get(0))?;
                if exists == 0 {
                    return Err(Error::NotFound("parent folder"));
                }
                let cycle: i64 = tx.query_row(
                    "WITH RECURSIVE up(id) AS (
                         SELECT ?1 UNION ALL
                         SELECT f.parent_id FROM folders f JOIN up ON f.id = up.id
                         WHERE f.parent_id IS NOT NULL)
                     SELECT COUNT(*) FROM up WHERE id = ?2",
                    params![p.0, id.0],
                    |r| r.get(0),
                )?;
                if cycle > 0 {
                    return Err(Error::Conflict(
                        "a folder cannot be moved into itself or one of its sub-folders".into(),
                    ));
                }
            }
            parent = new_parent.map(|p| p.0);
            if parent != current_parent && patch.sort_order.is_none() {
                let next: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(sort_order) + 1, 0) FROM folders WHERE parent_id IS ?1",
                    [parent],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "UPDATE folders SET parent_id = ?1, sort_order = ?2 WHERE id = ?3",
                    params![parent, next, id.0],
                )?;
            } else {
                tx.execute("UPDATE folders SET parent_id = ?1 WHERE id = ?2", params![parent, id.0])?;
            }
        }
        if let Some(order) = patch.sort_order {
            place_among_siblings(&tx, id, parent, order)?;
        }
        tx.commit()?;
        self.folder(id)
    }

    /// Deletes a folder, its sub-folders and their memberships; the tracks stay.
    pub fn delete_folder(&self, id: FolderId) -> Result<()> {
        let n = self.conn.execute("DELETE FROM folders WHERE id = ?1", [id.0])?;
        if n == 0 {
            return Err(Error::NotFound("folder"));
        }
        Ok(())
    }

    /// Adds tracks to a folder at `position` (default: the end). Tracks already there are moved.
    pub fn add_tracks_to_folder(
        &mut self,
        folder: FolderId,
        tracks: &[TrackId],
        position: Option<usize>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut order = ordered_members(&tx, folder)?;
        for t in tracks {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM tracks WHERE id = ?1", [t.0], |r| r.get(0))?;
            if n == 0 {
                return Err(Error::NotFound("track"));
            }
        }
        let mut unique: Vec<TrackId> = Vec::with_capacity(tracks.len());
        for t in tracks {
            if !unique.contains(t) {
                unique.push(*t);
            }
        }
        order.retain(|t| !unique.contains(t));
        let at = position.unwrap_or(order.len()).min(order.len());
        order.splice(at..at, unique);
        write_members(&tx, folder, &order)?;
        tx.commit()?;
        Ok(())
    }

    pub fn remove_track_from_folder(&mut self, folder: FolderId, track: TrackId) -> Result<()> {
        let tx = self.conn.transaction()?;
        let n =
            tx.execute("DELETE FROM track_folders WHERE folder_id = ?1 AND track_id = ?2", params![folder.0, track.0])?;
        if n == 0 {
            return Err(Error::NotFound("track in folder"));
        }
        let order = ordered_members(&tx, folder)?;
        write_members(&tx, folder, &order)?;
        tx.commit()?;
        Ok(())
    }

    /// Sets the order of a folder's tracks; `order` must list exactly the folder's tracks.
    pub fn set_folder_order(&mut self, folder: FolderId, order: &[TrackId]) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut current = ordered_members(&tx, folder)?;
        let mut wanted = order.to_vec();
        current.sort();
        wanted.sort();
        if current != wanted {
            return Err(Error::Invalid("trackIds must list each of the folder's tracks exactly once".into()));
        }
        write_members(&tx, folder, order)?;
        tx.commit()?;
        Ok(())
    }

    // ---- scenes ----

    /// Every scene in the GM's order. One whose stored document cannot be read (written by
    /// a newer version, or damaged) is left out and logged.
    pub fn scenes(&self) -> Result<Vec<Scene>> {
        let rows = self.scene_rows(None)?;
        rows.into_iter().map(|(id, position, spec)| self.describe_scene(id, position, spec)).collect()
    }

    pub fn scene(&self, id: SceneId) -> Result<Scene> {
        let (id, position, spec) = self.scene_rows(Some(id))?.pop().ok_or(Error::NotFound("scene"))?;
        self.describe_scene(id, position, spec)
    }

    /// What scene `id` plays.
    pub fn scene_spec(&self, id: SceneId) -> Result<SceneSpec> {
        self.scene_rows(Some(id))?.pop().map(|(_, _, spec)| spec).ok_or(Error::NotFound("scene"))
    }

    /// Adds a scene (already checked with [`SceneSpec::normalize`]) at the end of the list.
    pub fn create_scene(&mut self, spec: &SceneSpec) -> Result<Scene> {
        let tx = self.conn.transaction()?;
        let id = insert_scene(&tx, spec)?;
        tx.commit()?;
        self.scene(id)
    }

    pub fn update_scene(&mut self, id: SceneId, spec: &SceneSpec) -> Result<Scene> {
        let n = self.conn.execute("UPDATE scenes SET spec = ?2 WHERE id = ?1", params![id.0, scene_json(spec)?])?;
        if n == 0 {
            return Err(Error::NotFound("scene"));
        }
        self.scene(id)
    }

    pub fn delete_scene(&mut self, id: SceneId) -> Result<()> {
        let tx = self.conn.transaction()?;
        if tx.execute("DELETE FROM scenes WHERE id = ?1", [id.0])? == 0 {
            return Err(Error::NotFound("scene"));
        }
        tx.execute(
            "UPDATE scenes SET position = (SELECT COUNT(*) FROM scenes s WHERE s.position < scenes.position)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Puts the scenes in this order; `order` must list every scene exactly once.
    pub fn set_scene_order(&mut self, order: &[SceneId]) -> Result<Vec<Scene>> {
        let tx = self.conn.transaction()?;
        let mut current: Vec<i64> =
            tx.prepare("SELECT id FROM scenes")?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let mut wanted: Vec<i64> = order.iter().map(|id| id.0).collect();
        current.sort_unstable();
        wanted.sort_unstable();
        if current != wanted {
            return Err(Error::Invalid("sceneIds must list each scene exactly once".into()));
        }
        for (position, id) in order.iter().enumerate() {
            tx.execute("UPDATE scenes SET position = ?2 WHERE id = ?1", params![id.0, position as i64])?;
        }
        tx.commit()?;
        self.scenes()
    }

    // ---- device checks ----

    /// Keeps a device check (already checked with [`CheckReport::normalize`]), dropping the
    /// oldest beyond [`KEPT_CHECKS`].
    pub fn add_device_check(&mut self, received_at: u64, report: &CheckReport) -> Result<StoredCheck> {
        let json = serde_json::to_string(report).map_err(|e| Error::Invalid(format!("report: {e}")))?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO device_checks(received_at, report) VALUES (?1, ?2)",
            params![received_at as i64, json],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "DELETE FROM device_checks WHERE id <= (SELECT id FROM device_checks ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            [KEPT_CHECKS],
        )?;
        tx.commit()?;
        Ok(StoredCheck { id, received_at, report: report.clone() })
    }

    /// The newest `limit` device checks, newest first. One whose stored report cannot be read
    /// (written by a newer version) is left out and logged.
    pub fn device_checks(&self, limit: u32) -> Result<Vec<StoredCheck>> {
        let mut stmt =
            self.conn.prepare("SELECT id, received_at, report FROM device_checks ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt
            .query_map([limit], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, received_at, json)| match serde_json::from_str(&json) {
                Ok(report) => Some(StoredCheck { id, received_at: received_at.max(0) as u64, report }),
                Err(e) => {
                    tracing::warn!(id, error = %e, "skipping a device check that cannot be read");
                    None
                }
            })
            .collect())
    }

    /// Every scene with the tracks' paths and the folders' names, for another server.
    pub fn export_scenes(&self) -> Result<SceneExport> {
        let scenes: Vec<SceneSpec> = self.scene_rows(None)?.into_iter().map(|(_, _, spec)| spec).collect();
        let mut tracks: Vec<TrackId> = scenes.iter().flat_map(SceneSpec::track_ids).collect();
        let mut folders: Vec<FolderId> = scenes.iter().flat_map(SceneSpec::folder_ids).collect();
        tracks.sort_unstable();
        tracks.dedup();
        folders.sort_unstable();
        folders.dedup();
        Ok(SceneExport {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            tracks: self.track_infos(&tracks)?,
            folders: self.folder_infos(&folders)?,
            scenes,
        })
    }

    /// Adds the file's scenes after the ones there are, all or none. Tracks are found by
    /// path and folders by name, so ids from another server point at the same music here;
    /// what is not found keeps its id and shows as missing.
    pub fn import_scenes(&mut self, file: SceneExport) -> Result<Vec<Scene>> {
        if file.format != EXPORT_FORMAT || file.version != EXPORT_VERSION {
            return Err(Error::Invalid(format!(
                "format: expected {EXPORT_FORMAT:?} version {EXPORT_VERSION}, got {:?} version {}",
                file.format, file.version
            )));
        }
        let tx = self.conn.transaction()?;
        let mut tracks = HashMap::new();
        for t in file.tracks.iter().filter(|t| !t.path.is_empty()) {
            let found = tx
                .query_row("SELECT id FROM tracks WHERE filepath = ?1 ORDER BY missing, id LIMIT 1", [&t.path], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(id) = found {
                tracks.insert(t.id, TrackId(id));
            }
        }
        let mut folders = HashMap::new();
        for f in file.folders.iter().filter(|f| !f.name.is_empty()) {
            let found = tx
                .query_row("SELECT id FROM folders WHERE name = ?1 ORDER BY id LIMIT 1", [&f.name], |r| r.get(0))
                .optional()?;
            if let Some(id) = found {
                folders.insert(f.id, FolderId(id));
            }
        }
        let mut ids = Vec::with_capacity(file.scenes.len());
        for (i, mut spec) in file.scenes.into_iter().enumerate() {
            spec.normalize().map_err(|e| Error::Invalid(format!("scenes[{i}].{e}")))?;
            spec.map_ids(&tracks, &folders);
            ids.push(insert_scene(&tx, &spec)?);
        }
        tx.commit()?;
        ids.into_iter().map(|id| self.scene(id)).collect()
    }

    /// Scene rows (all, or the one with `id`) in order, parsed; unreadable ones are logged and skipped.
    fn scene_rows(&self, id: Option<SceneId>) -> Result<Vec<(SceneId, u32, SceneSpec)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, position, spec FROM scenes WHERE ?1 IS NULL OR id = ?1 ORDER BY position, id",
        )?;
        let rows = stmt
            .query_map([id.map(|i| i.0)], |r| Ok((SceneId(r.get(0)?), r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, position, json)| match serde_json::from_str::<SceneSpec>(&json) {
                Ok(spec) => Some((id, u32::try_from(position).unwrap_or(u32::MAX), spec)),
                Err(e) => {
                    tracing::error!(scene = %id, error = %e, "a stored scene cannot be read; leaving it out");
                    None
                }
            })
            .collect())
    }

    fn describe_scene(&self, id: SceneId, position: u32, spec: SceneSpec) -> Result<Scene> {
        let tracks = self.track_infos(&spec.track_ids())?;
        let folders = self.folder_infos(&spec.folder_ids())?;
        Ok(Scene { id, position, spec, tracks, folders })
    }

    /// Title, path and presence of each track; an unknown id is listed as missing.
    fn track_infos(&self, ids: &[TrackId]) -> Result<Vec<TrackRefInfo>> {
        let mut stmt = self.conn.prepare_cached("SELECT title, filepath, missing FROM tracks WHERE id = ?1")?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let row = stmt.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
            out.push(match row {
                Some((title, path, missing)) => TrackRefInfo { id, title, path, missing },
                None => TrackRefInfo { id, title: String::new(), path: String::new(), missing: true },
            });
        }
        Ok(out)
    }

    /// Name and presence of each folder.
    fn folder_infos(&self, ids: &[FolderId]) -> Result<Vec<FolderRefInfo>> {
        let mut stmt = self.conn.prepare_cached("SELECT name FROM folders WHERE id = ?1")?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let name: Option<String> = stmt.query_row([id.0], |r| r.get(0)).optional()?;
            out.push(FolderRefInfo { id, missing: name.is_none(), name: name.unwrap_or_default() });
        }
        Ok(out)
    }

    // ---- scanning ----

    /// Every known file by its raw relative path.
    pub fn known_files(&self) -> rusqlite::Result<HashMap<Vec<u8>, KnownFile>> {
        let mut stmt = self.conn.prepare("SELECT relpath, id, file_size, mtime_ns, missing FROM tracks")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                KnownFile {
                    id: TrackId(r.get(1)?),
                    file_size: r.get::<_, i64>(2)? as u64,
                    mtime_ns: r.get(3)?,
                    missing: r.get(4)?,
                },
            ))
        })?;
        rows.collect()
    }

    /// Raw paths with a recorded scan error and the file size/mtime they failed at.
    pub fn failed_paths(&self) -> rusqlite::Result<Vec<Vec<u8>>> {
        let mut stmt = self.conn.prepare("SELECT relpath FROM scan_errors")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    }

    /// Marks tracks missing; returns how many changed state.
    pub fn mark_missing(&mut self, ids: &[TrackId], now_ms: i64) -> rusqlite::Result<u64> {
        let tx = self.conn.transaction()?;
        let mut changed = 0;
        {
            let mut stmt =
                tx.prepare("UPDATE tracks SET missing = 1, updated_at = ?2 WHERE id = ?1 AND missing = 0")?;
            for id in ids {
                changed += stmt.execute(params![id.0, now_ms])? as u64;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Writes one batch of scan results in one transaction. A new path whose fingerprint
    /// matches a missing track takes over that track (a move or rename).
    pub fn apply_scan_batch(
        &mut self,
        files: &[ScannedFile],
        failures: &[FailedFile],
        now_ms: i64,
    ) -> rusqlite::Result<Vec<Applied>> {
        let tx = self.conn.transaction()?;
        let mut applied = Vec::with_capacity(files.len());
        {
            let mut by_path = tx.prepare_cached("SELECT id FROM tracks WHERE relpath = ?1")?;
            let mut moved_from =
                tx.prepare_cached("SELECT id FROM tracks WHERE fingerprint = ?1 AND missing = 1 ORDER BY id LIMIT 1")?;
            // Parameters 1..=17 are the scanned columns, 18 the time, 19 the id.
            let n = SCANNED_COLUMNS.len();
            let assignments: Vec<String> =
                SCANNED_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
            let mut update = tx.prepare_cached(&format!(
                "UPDATE tracks SET {}, missing = 0, updated_at = ?{} WHERE id = ?{}",
                assignments.join(", "),
                n + 1,
                n + 2
            ))?;
            let placeholders: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO tracks({}, missing, added_at, updated_at) VALUES ({}, 0, ?{}, ?{})",
                SCANNED_COLUMNS.join(", "),
                placeholders.join(", "),
                n + 1,
                n + 1
            ))?;
            let mut clear_error = tx.prepare_cached("DELETE FROM scan_errors WHERE relpath = ?1")?;
            for f in files {
                clear_error.execute([&f.relpath])?;
                let existing: Option<i64> = by_path.query_row([&f.relpath], |r| r.get(0)).optional()?;
                let target = match existing {
                    Some(id) => Some(id),
                    None => moved_from.query_row([&f.fingerprint], |r| r.get(0)).optional()?,
                };
                let values = f.values();
                let columns =
                    values.iter().map(|v| v.as_ref() as &dyn rusqlite::ToSql).chain([&now_ms as &dyn rusqlite::ToSql]);
                match target {
                    Some(id) => {
                        update.execute(rusqlite::params_from_iter(columns.chain([&id as &dyn rusqlite::ToSql])))?;
                        applied.push(if existing.is_some() { Applied::Updated } else { Applied::Moved });
                    }
                    None => {
                        insert.execute(rusqlite::params_from_iter(columns))?;
                        applied.push(Applied::Added);
                    }
                }
            }
            let mut record_error = tx.prepare_cached(
                "INSERT INTO scan_errors(relpath, filepath, reason, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(relpath) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            )?;
            let mut drop_track =
                tx.prepare_cached("UPDATE tracks SET missing = 1, updated_at = ?2 WHERE relpath = ?1")?;
            for f in failures {
                record_error.execute(params![f.relpath, f.filepath, f.reason, now_ms])?;
                // A track whose file turned unreadable is no longer playable.
                drop_track.execute(params![f.relpath, now_ms])?;
            }
        }
        tx.commit()?;
        Ok(applied)
    }

    /// Forgets recorded errors for paths that are gone from the music folder.
    pub fn forget_errors(&mut self, relpaths: &[Vec<u8>]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM scan_errors WHERE relpath = ?1")?;
            for p in relpaths {
                stmt.execute([p])?;
            }
        }
        tx.commit()
    }

    pub fn scan_errors(&self) -> rusqlite::Result<Vec<ScanError>> {
        let mut stmt = self.conn.prepare("SELECT filepath, reason, at FROM scan_errors ORDER BY filepath")?;
        let rows =
            stmt.query_map([], |r| Ok(ScanError { filepath: r.get(0)?, reason: r.get(1)?, at_ms: r.get(2)? }))?;
        rows.collect()
    }

    /// Number of tracks, and of those missing.
    pub fn track_counts(&self) -> rusqlite::Result<(u64, u64)> {
        self.conn.query_row("SELECT COUNT(*), COALESCE(SUM(missing), 0) FROM tracks", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })
    }
}

fn track_from_row(r: &Row<'_>) -> rusqlite::Result<Track> {
    Ok(Track {
        id: TrackId(r.get(0)?),
        filepath: r.get(1)?,
        filename: r.get(2)?,
        title: r.get(3)?,
        artist: r.get(4)?,
        album: r.get(5)?,
        track_number: r.get(6)?,
        disc_number: r.get(7)?,
        duration: r.get::<_, i64>(8)? as f64 / 1000.0,
        format: r.get(9)?,
        bitrate: r.get(10)?,
        sample_rate: r.get(11)?,
        channels: r.get(12)?,
        file_size: r.get::<_, i64>(13)? as u64,
        missing: r.get(14)?,
        has_cover: r.get(15)?,
        loudness_lufs: r.get(16)?,
    })
}

fn scene_json(spec: &SceneSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| Error::Internal(format!("cannot write a scene: {e}")))
}

/// Adds a scene at the end of the list; a conflict once [`MAX_SCENES`] exist.
fn insert_scene(tx: &Transaction<'_>, spec: &SceneSpec) -> Result<SceneId> {
    let count: i64 = tx.query_row("SELECT COUNT(*) FROM scenes", [], |r| r.get(0))?;
    if count >= MAX_SCENES as i64 {
        return Err(Error::Conflict(format!("there are already {MAX_SCENES} scenes; delete one first")));
    }
    tx.execute("INSERT INTO scenes(position, spec) VALUES (?1, ?2)", params![count, scene_json(spec)?])?;
    Ok(SceneId(tx.last_insert_rowid()))
}

fn build_tree(flat: Vec<Folder>) -> Vec<Folder> {
    let mut children: HashMap<Option<FolderId>, Vec<Folder>> = HashMap::new();
    for f in flat {
        children.entry(f.parent_id).or_default().push(f);
    }
    fn attach(node: &mut Folder, children: &mut HashMap<Option<FolderId>, Vec<Folder>>) {
        if let Some(mut kids) = children.remove(&Some(node.id)) {
            for k in &mut kids {
                attach(k, children);
            }
            node.children = kids;
        }
    }
    let mut roots = children.remove(&None).unwrap_or_default();
    for r in &mut roots {
        attach(r, &mut children);
    }
    roots
}

/// Moves folder `id` to index `order` among its siblings and renumbers them 0, 1, 2, …
fn place_among_siblings(tx: &Transaction<'_>, id: FolderId, parent: Option<i64>, order: i64) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare("SELECT id FROM folders WHERE parent_id IS ?1 AND id != ?2 ORDER BY sort_order, id")?;
    let mut siblings =
        stmt.query_map(params![parent, id.0], |r| r.get::<_, i64>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    let at = (order.max(0) as usize).min(siblings.len());
    siblings.insert(at, id.0);
    let mut update = tx.prepare("UPDATE folders SET sort_order = ?1 WHERE id = ?2")?;
    for (i, sid) in siblings.iter().enumerate() {
        update.execute(params![i as i64, sid])?;
    }
    Ok(())
}

fn ordered_members(tx: &Transaction<'_>, folder: FolderId) -> Result<Vec<TrackId>> {
    let n: i64 = tx.query_row("SELECT COUNT(*) FROM folders WHERE id = ?1", [folder.0], |r| r.get(0))?;
    if n == 0 {
        return Err(Error::NotFound("folder"));
    }
    let mut stmt =
        tx.prepare_cached("SELECT track_id FROM track_folders WHERE folder_id = ?1 ORDER BY position, track_id")?;
    let ids = stmt.query_map([folder.0], |r| Ok(TrackId(r.get(0)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

fn write_members(tx: &Transaction<'_>, folder: FolderId, order: &[TrackId]) -> Result<()> {
    tx.execute("DELETE FROM track_folders WHERE folder_id = ?1", [folder.0])?;
    let mut stmt = tx.prepare_cached("INSERT INTO track_folders(folder_id, track_id, position) VALUES (?1, ?2, ?3)")?;
    for (i, t) in order.iter().enumerate() {
        stmt.execute(params![folder.0, t.0, i as i64])?;
    }
    Ok(())
}

/// Turns free text into an FTS5 query: every word must match as a prefix.
/// Returns `None` when the text has no searchable characters.
fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| format!("\"{w}\"*")).collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_checks_keep_the_newest_few_hundred_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("db.sqlite")).unwrap();
        let mut report: CheckReport = serde_json::from_value(serde_json::json!({
            "device": "d", "userAgent": "ua", "engine": "native", "verdict": "fair", "started": true, "seconds": 60,
            "samples": 1, "stalls": 0, "seeks": 0, "rateChanges": 0, "rateIgnored": 3, "correction": "seek",
            "hiddenSeconds": 0, "outputDelayMs": 0
        }))
        .unwrap();
        for i in 0..KEPT_CHECKS + 5 {
            report.samples = i;
            db.add_device_check(1000 + u64::from(i), &report).unwrap();
        }
        let all = db.device_checks(KEPT_CHECKS + 100).unwrap();
        assert_eq!(all.len(), KEPT_CHECKS as usize);
        assert_eq!(all[0].report.samples, KEPT_CHECKS + 4, "newest first");
        assert_eq!(all.last().unwrap().report.samples, 5, "the five oldest made room");
        assert_eq!(all[0].received_at, 1000 + u64::from(KEPT_CHECKS + 4));
        // A row this version cannot read (a newer server's) is skipped, not an error.
        db.conn
            .execute("INSERT INTO device_checks(received_at, report) VALUES (1, '{\"engine\": \"quantum\"}')", [])
            .unwrap();
        let newest = db.device_checks(2).unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].report.samples, KEPT_CHECKS + 4);
    }

    #[test]
    fn fts_query_quotes_words_as_prefixes() {
        assert_eq!(fts_query("Dra qu").as_deref(), Some("\"Dra\"* \"qu\"*"));
        assert_eq!(fts_query("  \"*()  "), None);
        assert_eq!(fts_query("Éowyn's theme").as_deref(), Some("\"Éowyn\"* \"s\"* \"theme\"*"));
    }
}
