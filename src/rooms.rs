//! The rooms on this server: each table of a club or a convention has its own stage, queue,
//! settings, listeners, live stream and GM key. The music library, its folders and the scenes
//! are shared by every room.
//!
//! The server's key (`GM_KEY`) is the admin key: it creates, renames and deletes rooms, rotates
//! their keys and acts as GM in any room. A room's own key works in that room only (and for
//! the shared library and scenes). The room `main` always exists, and the one-room URLs
//! (`/`, `/gm`, `/hls/live.m3u8`, `/api/session`, `/ws`) are its aliases.
//!
//! Every room is on the same epoch grid, so each room's stream is as cacheable as the one
//! room's was. An idle room renders nothing: parts are rendered when asked for.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::cache::SegmentCache;
use crate::clock::{unix_ms, Clock};
use crate::control::Listeners;
use crate::gm_key::{key_matches, new_key, GmKey, Refusal};
use crate::library::db::RoomRow;
use crate::library::Library;
use crate::room::live::LiveParts;
use crate::room::published::PublishedParts;
use crate::room::{Error, RoomHandle, RoomOptions};

/// The room every server has; today's one-room URLs are its aliases.
pub const MAIN: &str = "main";
/// The name of [`MAIN`] when the server makes it.
const MAIN_NAME: &str = "Main table";
/// Longest slug, in characters.
const MAX_SLUG_CHARS: usize = 40;
/// Longest room name, in characters.
const MAX_NAME_CHARS: usize = 80;

/// One room: its stage, its stream, who listens, and its GM key.
pub struct Room {
    pub slug: Arc<str>,
    /// Unix ms.
    pub created_at: i64,
    details: Mutex<Details>,
    pub stage: RoomHandle,
    pub live: LiveParts,
    pub listeners: Listeners,
    /// Cancelled when the room is deleted: its sockets say so and close.
    deleted: CancellationToken,
}

/// What the admin can change about a room.
#[derive(Clone)]
struct Details {
    name: String,
    gm_key: String,
}

impl Room {
    pub fn name(&self) -> String {
        self.details.lock().map(|d| d.name.clone()).unwrap_or_default()
    }

    /// The room's own GM key (for the admin).
    pub fn gm_key(&self) -> String {
        self.details.lock().map(|d| d.gm_key.clone()).unwrap_or_default()
    }

    /// Resolves once the room is deleted.
    pub async fn deleted(&self) {
        self.deleted.cancelled().await;
    }

    fn key_matches(&self, given: &str) -> bool {
        self.details.lock().is_ok_and(|d| key_matches(given, &d.gm_key))
    }
}

/// Who a key proved the sender to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The server's key: every room, and the rooms themselves.
    Admin,
    /// A room's GM key.
    Gm,
}

/// What every room is started with.
pub struct RoomsConfig {
    pub library: Library,
    pub cache: SegmentCache,
    pub clock: Arc<dyn Clock>,
    pub options: RoomOptions,
    /// The server's key.
    pub admin_key: GmKey,
    /// Rooms allowed at once, [`MAIN`] included.
    pub max_rooms: usize,
}

/// Every room, by slug; cheap to clone.
#[derive(Clone)]
pub struct Rooms(Arc<Shared>);

struct Shared {
    rooms: RwLock<BTreeMap<Arc<str>, Arc<Room>>>,
    /// Creating and deleting rooms, one at a time.
    changing: tokio::sync::Mutex<()>,
    config: RoomsConfig,
    music_dir: PathBuf,
}

impl Rooms {
    /// Starts every saved room, making [`MAIN`] if it is missing, and forgets the published
    /// parts of rooms deleted meanwhile.
    pub async fn open(config: RoomsConfig) -> Result<Rooms, String> {
        let mut rows =
            config.library.call(|db| Ok(db.rooms()?)).await.map_err(|e| format!("cannot read the rooms: {e}"))?;
        if !rows.iter().any(|r| r.slug == MAIN) {
            let row = RoomRow {
                slug: MAIN.into(),
                name: MAIN_NAME.into(),
                gm_key: new_key(),
                created_at: unix_ms(config.clock.now()) as i64,
            };
            let saved = row.clone();
            config
                .library
                .call(move |db| Ok(db.insert_room(&saved)?))
                .await
                .map_err(|e| format!("cannot save the room main: {e}"))?;
            rows.insert(0, row);
        }
        let slugs: Vec<&str> = rows.iter().map(|r| r.slug.as_str()).collect();
        PublishedParts::remove_rooms_except(config.cache.root(), &slugs)
            .map_err(|e| format!("cannot tidy the published parts in {}: {e}", config.cache.root().display()))?;
        let music_dir = config.library.music_dir().to_path_buf();
        let rooms = Rooms(Arc::new(Shared {
            rooms: RwLock::default(),
            changing: tokio::sync::Mutex::new(()),
            config,
            music_dir,
        }));
        for row in rows {
            let room = rooms.start(row).await?;
            rooms.insert(room);
        }
        Ok(rooms)
    }

    async fn start(&self, row: RoomRow) -> Result<Arc<Room>, String> {
        let c = &self.0.config;
        let stage =
            RoomHandle::start(&row.slug, c.library.clone(), c.cache.clone(), c.clock.clone(), c.options).await?;
        let live = LiveParts::new(c.cache.clone(), self.0.music_dir.clone(), &row.slug)?;
        tokio::spawn(live.clone().render_as_published(stage.clone()));
        Ok(Arc::new(Room {
            slug: row.slug.into(),
            created_at: row.created_at,
            details: Mutex::new(Details { name: row.name, gm_key: row.gm_key }),
            stage,
            live,
            listeners: Listeners::default(),
            deleted: CancellationToken::new(),
        }))
    }

    fn insert(&self, room: Arc<Room>) {
        if let Ok(mut rooms) = self.0.rooms.write() {
            rooms.insert(room.slug.clone(), room);
        }
    }

    /// The room called `slug`.
    pub fn get(&self, slug: &str) -> Option<Arc<Room>> {
        self.0.rooms.read().ok()?.get(slug).cloned()
    }

    /// The room [`MAIN`], which is never deleted.
    pub fn main(&self) -> Arc<Room> {
        self.get(MAIN).expect("the room main is made at start and never deleted")
    }

    /// Every room, oldest first.
    pub fn list(&self) -> Vec<Arc<Room>> {
        let mut all: Vec<_> = self.0.rooms.read().map(|r| r.values().cloned().collect()).unwrap_or_default();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.slug.cmp(&b.slug)));
        all
    }

    /// Rooms this server holds at most.
    pub fn max_rooms(&self) -> usize {
        self.0.config.max_rooms
    }

    /// The server's key and its guard against guessing.
    pub fn admin_key(&self) -> &GmKey {
        &self.0.config.admin_key
    }

    /// Checks a key sent from `from` for acting in `room`: the admin key, or that room's key.
    pub fn authorize(&self, room: &Room, given: &str, from: Option<IpAddr>) -> Result<Access, Refusal> {
        let admin = self.admin_key();
        admin.check_with(given, from, Instant::now(), |given| {
            if key_matches(given, admin.expose()) {
                Some(Access::Admin)
            } else {
                room.key_matches(given).then_some(Access::Gm)
            }
        })
    }

    /// Checks a key for the shared library and scenes: the admin key or any room's key.
    pub fn authorize_any(&self, given: &str, from: Option<IpAddr>) -> Result<Access, Refusal> {
        let admin = self.admin_key();
        admin.check_with(given, from, Instant::now(), |given| {
            if key_matches(given, admin.expose()) {
                Some(Access::Admin)
            } else {
                self.list().iter().any(|r| r.key_matches(given)).then_some(Access::Gm)
            }
        })
    }

    /// Makes a room called `name`, at `slug` (from the name when `None`), with a new GM key.
    pub async fn create(&self, slug: Option<&str>, name: &str) -> Result<Arc<Room>, Error> {
        let name = valid_name(name)?;
        let slug = match slug {
            Some(s) => valid_slug(s)?,
            None => slug_from(&name)?,
        };
        let _changing = self.0.changing.lock().await;
        if self.get(&slug).is_some() {
            return Err(Error::Conflict(format!("slug: a room {slug:?} exists already")));
        }
        let max = self.0.config.max_rooms;
        if self.list().len() >= max {
            return Err(Error::Conflict(format!(
                "this server holds at most {max} rooms (MAX_ROOMS); delete one first"
            )));
        }
        let row = RoomRow { slug, name, gm_key: new_key(), created_at: unix_ms(self.0.config.clock.now()) as i64 };
        let saved = row.clone();
        if !self.0.config.library.call(move |db| Ok(db.insert_room(&saved)?)).await? {
            return Err(Error::Conflict(format!("slug: a room {:?} exists already", row.slug)));
        }
        let room = self.start(row).await.map_err(Error::Internal)?;
        self.insert(room.clone());
        tracing::info!(room = %room.slug, "room created");
        Ok(room)
    }

    /// Renames a room.
    pub async fn rename(&self, slug: &str, name: &str) -> Result<Arc<Room>, Error> {
        let name = valid_name(name)?;
        self.change(slug, |d| d.name = name).await
    }

    /// Gives a room a new GM key; the old one stops working at once.
    pub async fn rotate_key(&self, slug: &str) -> Result<Arc<Room>, Error> {
        let key = new_key();
        self.change(slug, |d| d.gm_key = key).await
    }

    async fn change(&self, slug: &str, f: impl FnOnce(&mut Details)) -> Result<Arc<Room>, Error> {
        let _changing = self.0.changing.lock().await;
        let room = self.get(slug).ok_or(Error::NotFound("room"))?;
        let mut details = room.details.lock().map_err(|_| Error::Internal("room details poisoned".into()))?.clone();
        f(&mut details);
        let (s, d) = (room.slug.clone(), details.clone());
        self.0.config.library.call(move |db| Ok(db.update_room(&s, &d.name, &d.gm_key)?)).await?;
        if let Ok(mut current) = room.details.lock() {
            *current = details;
        }
        Ok(room)
    }

    /// Deletes a room: its listeners are told, its stage stops, its saved state and published
    /// parts go. [`MAIN`] cannot be deleted.
    pub async fn delete(&self, slug: &str) -> Result<(), Error> {
        if slug == MAIN {
            return Err(Error::Conflict("the room main cannot be deleted".into()));
        }
        let _changing = self.0.changing.lock().await;
        let room = self.get(slug).ok_or(Error::NotFound("room"))?;
        let s = room.slug.clone();
        self.0.config.library.call(move |db| Ok(db.delete_room(&s)?)).await?;
        if let Ok(mut rooms) = self.0.rooms.write() {
            rooms.remove(slug);
        }
        room.deleted.cancel();
        room.stage.stop().await;
        room.live.remove_published();
        tracing::info!(room = %room.slug, "room deleted");
        Ok(())
    }

    /// Stops every room where it is (the server is shutting down).
    pub async fn stop_all(&self) {
        for room in self.list() {
            room.stage.stop().await;
        }
    }
}

/// A room's name, trimmed: 1 to [`MAX_NAME_CHARS`] characters, no control characters.
fn valid_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!("name: 1 to {MAX_NAME_CHARS} characters without control characters")));
    }
    Ok(name.to_owned())
}

/// A slug as given: 2 to [`MAX_SLUG_CHARS`] of `a-z`, `0-9` and `-`, starting with a letter
/// and not ending with `-` (so no slug looks like a rendition such as `256k`).
fn valid_slug(slug: &str) -> Result<String, Error> {
    let ok = (2..=MAX_SLUG_CHARS).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && !slug.ends_with('-')
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(Error::Invalid(format!(
            "slug: 2 to {MAX_SLUG_CHARS} characters of a-z, 0-9 and -, starting with a letter, e.g. crypt-of-the-lich"
        )));
    }
    Ok(slug.to_owned())
}

/// A slug made from a room's name: `Crypt of the Lich!` → `crypt-of-the-lich`.
fn slug_from(name: &str) -> Result<String, Error> {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_owned();
    if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        slug.insert_str(0, "room-");
    }
    slug.truncate(MAX_SLUG_CHARS);
    valid_slug(slug.trim_end_matches('-')).map_err(|_| Error::Invalid("slug: give one; the name makes none".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_plain_and_never_look_like_a_rendition() {
        assert_eq!(valid_slug("crypt-of-the-lich").unwrap(), "crypt-of-the-lich");
        for bad in ["", "a", "256k", "Crypt", "crypt_", "crypt-", "-crypt", "cr ypt", "crypt/x", &"a".repeat(41)] {
            assert!(valid_slug(bad).is_err(), "{bad:?}");
        }
        assert_eq!(slug_from("Crypt of the Lich!").unwrap(), "crypt-of-the-lich");
        assert_eq!(slug_from("  Table 3 — Saturday ").unwrap(), "table-3-saturday");
        assert_eq!(slug_from("2nd table").unwrap(), "room-2nd-table");
        assert_eq!(slug_from("Ünïcode Tävern").unwrap(), "n-code-t-vern");
        assert_eq!(slug_from("???").unwrap(), "room");
        assert!(valid_name(" ").is_err());
        assert!(valid_name("a\u{7}b").is_err());
        assert_eq!(valid_name("  The Crypt ").unwrap(), "The Crypt");
    }
}
