//! The room actor: the only writer of the timeline.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::timeline::{part_at, Source, Timeline, TrackRef, PART_MS};
use super::{Command, NowPlaying, QueueAction, QueueItem, SessionState};
use crate::cache::{SegmentCache, SourceKey};
use crate::clock::{iso8601_ms, unix_ms, Clock};
use crate::error::{AppError, AppResult};
use crate::ids::TrackId;
use crate::library::model::Track;
use crate::library::Library;

/// Room name in the database (one room per server).
const ROOM: &str = "main";
/// A command is aimed at the first part starting at least this many ms from now: the time
/// its database lookups usually take, with room to spare.
const SAFETY_MS: u64 = 20;
/// A command whose part starts within this many ms once it is worked out (the database was
/// slow) is worked out again for a later part: a published part never changes.
const PUBLISH_MARGIN_MS: u64 = 5;
/// Attempts at that before the command is refused as unavailable.
const COMMAND_ATTEMPTS: usize = 5;
/// The next queued track is scheduled this many parts before the current one ends.
const LOOKAHEAD_PARTS: u64 = 8;
/// Entries older than this many parts (one hour) are forgotten.
pub const KEEP_PARTS: u64 = 3600 * 1000 / PART_MS;
/// Queue items listed in a state message.
const MAX_QUEUE_ITEMS: usize = 1000;
/// How often the actor looks ahead for track ends, ms.
const TICK_MS: u64 = 200;

type Reply = oneshot::Sender<AppResult<SessionState>>;

/// What the actor is asked to do.
enum Request {
    Command(Command, Reply),
    /// Look ahead now (as the periodic tick does) and answer when done; for simulations.
    Maintain(oneshot::Sender<()>),
}

/// Handle to the room actor; cheap to clone.
#[derive(Clone)]
pub struct RoomHandle {
    requests: mpsc::Sender<Request>,
    timeline: watch::Receiver<Arc<Timeline>>,
    state: watch::Receiver<Arc<SessionState>>,
    events: broadcast::Sender<Arc<SessionState>>,
    published: watch::Receiver<u64>,
}

impl RoomHandle {
    /// Loads the persisted room, catches it up with the wall clock and starts the actor and
    /// the part clock.
    pub async fn start(
        library: Library,
        cache: SegmentCache,
        clock: Arc<dyn Clock>,
        playback_delay_ms: u64,
    ) -> Result<RoomHandle, String> {
        let saved = library.call(|db| Ok(db.room_state(ROOM)?)).await.map_err(|e| e.to_string())?;
        let timeline = saved
            .and_then(|json| match serde_json::from_str::<Timeline>(&json) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "the saved room state is unreadable; starting silent");
                    None
                }
            })
            .unwrap_or_default();
        let now_part = part_at(unix_ms(clock.now()));
        let (timeline_tx, timeline_rx) = watch::channel(Arc::new(timeline.clone()));
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(64);
        let (published_tx, published_rx) = watch::channel(now_part);
        let mut actor = Actor {
            timeline,
            library,
            cache,
            clock: clock.clone(),
            playback_delay_ms,
            timeline_tx,
            state_tx: watch::channel(Arc::new(empty_state(playback_delay_ms))).0,
            events: events.clone(),
            meta: HashMap::new(),
            pending_lengths: Default::default(),
            lengths: mpsc::unbounded_channel(),
        };
        actor.catch_up(now_part).await;
        actor.publish_latest().await;
        let state = actor.state_tx.subscribe();
        tokio::spawn(actor.run(commands_rx));
        tokio::spawn(part_clock(clock, published_tx));
        Ok(RoomHandle { requests: commands_tx, timeline: timeline_rx, state, events, published: published_rx })
    }

    /// Runs a command; the answer is the new state with its `effectiveAt`.
    pub async fn command(&self, command: Command) -> AppResult<SessionState> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Command(command, tx))
            .await
            .map_err(|_| AppError::Unavailable("the room is shutting down".into()))?;
        rx.await.map_err(|_| AppError::Unavailable("the room is shutting down".into()))?
    }

    /// Runs the actor's look-ahead at once (tests drive a manual clock with this).
    pub async fn maintain(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Maintain(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The latest timeline, for playlist and part requests.
    pub fn timeline(&self) -> Arc<Timeline> {
        self.timeline.borrow().clone()
    }

    /// The current session state.
    pub fn state(&self) -> Arc<SessionState> {
        self.state.borrow().clone()
    }

    /// Every state change, as it happens.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SessionState>> {
        self.events.subscribe()
    }

    /// The latest published grid part; one notification per part wakes every waiter.
    pub fn published(&self) -> watch::Receiver<u64> {
        self.published.clone()
    }
}

/// Publishes the part number at each part boundary of the wall clock.
async fn part_clock(clock: Arc<dyn Clock>, tx: watch::Sender<u64>) {
    loop {
        let now = unix_ms(clock.now());
        tx.send_replace(part_at(now));
        let next = (part_at(now) + 1) * PART_MS;
        tokio::time::sleep(Duration::from_millis(next - now)).await;
        if tx.is_closed() && tx.receiver_count() == 0 {
            return;
        }
    }
}

struct Actor {
    timeline: Timeline,
    library: Library,
    cache: SegmentCache,
    clock: Arc<dyn Clock>,
    playback_delay_ms: u64,
    timeline_tx: watch::Sender<Arc<Timeline>>,
    state_tx: watch::Sender<Arc<SessionState>>,
    events: broadcast::Sender<Arc<SessionState>>,
    /// Tracks named in state messages, by id.
    meta: HashMap<TrackId, Track>,
    /// Fingerprints whose exact length is being measured.
    pending_lengths: std::collections::HashSet<String>,
    lengths: (mpsc::UnboundedSender<(String, Result<u64, String>)>, mpsc::UnboundedReceiver<(String, Result<u64, String>)>),
}

impl Actor {
    #[tracing::instrument(name = "room", skip_all, fields(room = ROOM))]
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = requests.recv() => {
                    let (command, reply) = match request {
                        None => return,
                        Some(Request::Maintain(done)) => {
                            if self.maintain().await {
                                self.publish_latest().await;
                            }
                            let _ = done.send(());
                            continue;
                        }
                        Some(Request::Command(command, reply)) => (command, reply),
                    };
                    let result = self.apply_before_its_part(&command).await;
                    let answer = match result {
                        Ok(()) => {
                            // The answer describes what is heard from the command's part on.
                            let at = self.timeline.changed_at_part;
                            tracing::info!(?command, effective_at_ms = at * PART_MS, "command");
                            self.publish(at).await;
                            Ok((*self.state_tx.borrow().clone()).clone())
                        }
                        Err(e) => {
                            tracing::info!(?command, error = %e, "command refused");
                            Err(e)
                        }
                    };
                    let _ = reply.send(answer);
                    if self.maintain().await {
                        self.publish_latest().await;
                    }
                }
                Some((fingerprint, length)) = self.lengths.1.recv() => {
                    self.pending_lengths.remove(&fingerprint);
                    self.set_length(&fingerprint, length);
                    self.maintain().await;
                    self.publish_latest().await;
                }
                _ = tick.tick() => {
                    if self.maintain().await {
                        self.publish_latest().await;
                    }
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        unix_ms(self.clock.now())
    }

    /// The first part a command may change.
    fn effective_part(&self) -> u64 {
        part_at(self.now_ms() + SAFETY_MS) + 1
    }

    /// Applies `command` from the first part still unpublished once it is worked out. A
    /// refused command changes nothing, not even a scheduled advance.
    async fn apply_before_its_part(&mut self, command: &Command) -> AppResult<()> {
        for _ in 0..COMMAND_ATTEMPTS {
            let before = self.timeline.clone();
            match self.apply(command.clone()).await {
                Ok(at) if at * PART_MS > self.now_ms() + PUBLISH_MARGIN_MS => return Ok(()),
                Ok(_) => self.timeline = before,
                Err(e) => {
                    self.timeline = before;
                    return Err(e);
                }
            }
        }
        Err(AppError::Unavailable("the room is too busy to take commands; try again".into()))
    }

    /// Applies `command` from part [`Self::effective_part`], which it returns.
    async fn apply(&mut self, command: Command) -> AppResult<u64> {
        let at = self.effective_part();
        // A command sees the room as it is heard, not a queue advance decided ahead of time;
        // the look-ahead decides again afterwards.
        self.timeline.unschedule(at);
        if matches!(command, Command::Play { .. } | Command::Next {} | Command::Previous {} | Command::Stop {}) {
            // The GM chose what plays next: an old playback problem is no longer news.
            self.timeline.error = None;
        }
        match command {
            Command::Play { track_id: Some(id), folder_id: None, position, shuffle: None } => {
                let track = self.track_ref(id).await?;
                let from = position_part(position.unwrap_or(0.0))?;
                self.timeline.select_in_queue(id);
                self.timeline.play(at, track, from);
            }
            Command::Play { track_id: None, folder_id: Some(folder), position: None, shuffle } => {
                let ids = self.library.call(move |db| db.folder_track_ids(folder)).await?;
                if ids.is_empty() {
                    return Err(AppError::BadRequest("the folder has no tracks".into()));
                }
                self.timeline.replace_queue(ids, shuffle.unwrap_or(false));
                self.start_queue_at(at, 0).await?;
            }
            Command::Play { .. } => {
                return Err(AppError::BadRequest(
                    "play takes {trackId, position?} or {folderId, shuffle?}".into(),
                ))
            }
            Command::Pause {} => {
                if !self.timeline.pause(at) {
                    return Err(AppError::Conflict("nothing is playing".into()));
                }
            }
            Command::Resume {} => {
                if !self.timeline.resume(at) {
                    // Nothing paused: start the queue's current track, if any.
                    let index = self.timeline.queue_index.or((!self.timeline.queue.is_empty()).then_some(0));
                    match index {
                        Some(i) => self.start_queue_at(at, i).await?,
                        None => return Err(AppError::Conflict("nothing to resume".into())),
                    }
                }
            }
            Command::Seek { position } => {
                let part = position_part(position)?;
                let Some((track, _, paused)) = self.timeline.current(at) else {
                    return Err(AppError::Conflict("nothing is playing".into()));
                };
                if track.parts.is_some_and(|n| part >= n) {
                    return Err(AppError::BadRequest("position is past the end of the track".into()));
                }
                if paused {
                    if let Some(p) = &mut self.timeline.paused {
                        p.at_part = part;
                    }
                    self.timeline.changed_at_part = at;
                } else {
                    self.timeline.play(at, track, part);
                }
            }
            Command::Stop {} => {
                self.timeline.stop(at);
            }
            Command::Next {} => match self.timeline.next_index(false) {
                Some(i) => self.start_queue_at(at, i).await?,
                None => {
                    self.timeline.queue_index = None;
                    self.timeline.stop(at);
                }
            },
            Command::Previous {} => {
                let restart = self.timeline.current(at).filter(|(_, index, _)| *index * PART_MS > 3000);
                match (restart, self.timeline.previous_index()) {
                    (Some((track, _, _)), _) => self.timeline.play(at, track, 0),
                    (None, Some(i)) => self.start_queue_at(at, i).await?,
                    (None, None) => return Err(AppError::Conflict("the queue is empty".into())),
                }
            }
            Command::Queue(action) => {
                let ok = match action {
                    QueueAction::Add { track_ids } => {
                        let found = self.library.call({
                            let ids = track_ids.clone();
                            move |db| db.tracks_by_id(&ids)
                        }).await?;
                        if found.len() != track_ids.len() {
                            return Err(AppError::NotFound("track"));
                        }
                        self.timeline.enqueue(&track_ids);
                        true
                    }
                    QueueAction::Remove { index } => self.timeline.remove_from_queue(index),
                    QueueAction::Move { from, to } => self.timeline.move_in_queue(from, to),
                    QueueAction::Clear {} => {
                        self.timeline.clear_queue();
                        true
                    }
                };
                if !ok {
                    return Err(AppError::BadRequest("no such queue position".into()));
                }
            }
            Command::Repeat { mode } => {
                self.timeline.repeat = mode;
            }
            Command::Shuffle { on } => {
                self.timeline.set_shuffle(on);
            }
            Command::Volume { volume } => {
                if !(0.0..=1.0).contains(&volume) {
                    return Err(AppError::BadRequest("volume is between 0 and 1".into()));
                }
                self.timeline.volume = volume;
                self.timeline.changed_at_part = at;
            }
        }
        Ok(at)
    }

    /// Makes queue position `index` current and plays it from the start at `at`.
    async fn start_queue_at(&mut self, at: u64, index: usize) -> AppResult<()> {
        let id = *self.timeline.queue.get(index).ok_or(AppError::BadRequest("no such queue position".into()))?;
        let track = self.track_ref(id).await?;
        self.timeline.queue_index = Some(index);
        self.timeline.play(at, track, 0);
        Ok(())
    }

    /// A playable reference to a track (404 when unknown, 409 when its file is missing).
    async fn track_ref(&mut self, id: TrackId) -> AppResult<TrackRef> {
        let (track, source) = self.library.call(move |db| Ok((db.track(id)?, db.track_source(id)?))).await?;
        if source.missing {
            return Err(AppError::Conflict(format!("the file of \"{}\" is missing", track.title)));
        }
        self.meta.insert(id, track);
        let key = SourceKey { fingerprint: source.fingerprint.clone(), path: self.source_path(&source.relpath) };
        let parts = self.cache.known_parts(&key);
        if parts.is_none() {
            self.cache.warm(&key);
        }
        Ok(TrackRef { id, fingerprint: source.fingerprint, relpath: source.relpath, parts })
    }

    fn source_path(&self, relpath: &[u8]) -> std::path::PathBuf {
        self.library.music_dir().join(std::ffi::OsStr::from_bytes(relpath))
    }

    fn key(&self, track: &TrackRef) -> SourceKey {
        SourceKey { fingerprint: track.fingerprint.clone(), path: self.source_path(&track.relpath) }
    }

    /// Records a track's exact length (or its failure) everywhere it appears.
    fn set_length(&mut self, fingerprint: &str, length: Result<u64, String>) {
        let parts = match length {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "a track could not be decoded; skipping it");
                self.timeline.error = Some(e);
                0
            }
        };
        for e in &mut self.timeline.entries {
            if let Source::Track { track, .. } = &mut e.source {
                if track.fingerprint == fingerprint {
                    track.parts = Some(parts);
                }
            }
        }
        if let Some(p) = &mut self.timeline.paused {
            if p.track.fingerprint == fingerprint {
                p.track.parts = Some(parts);
            }
        }
    }

    /// Keeps the timeline ahead of the clock: learns track lengths, schedules the next
    /// track before the current one ends, forgets old entries. True when something changed.
    async fn maintain(&mut self) -> bool {
        let now_part = part_at(self.now_ms());
        let before = self.timeline.clone();
        self.learn_last_length();
        if let Some(end) = self.timeline.last_track_end() {
            if end <= now_part + LOOKAHEAD_PARTS {
                let at = end.max(self.effective_part());
                let previous_index = self.timeline.queue_index;
                self.advance(at).await;
                self.timeline.scheduled = Some(super::timeline::Scheduled { at, previous_index });
            }
        }
        self.timeline.forget_before(now_part.saturating_sub(KEEP_PARTS));
        self.timeline != before
    }

    /// Asks the cache for the last entry's exact length, without blocking the actor.
    fn learn_last_length(&mut self) {
        let Some(Source::Track { track, .. }) = self.timeline.last().map(|e| e.source.clone()) else { return };
        if track.parts.is_some() || self.pending_lengths.contains(&track.fingerprint) {
            return;
        }
        let key = self.key(&track);
        if let Some(n) = self.cache.known_parts(&key) {
            self.set_length(&track.fingerprint, Ok(n));
            return;
        }
        self.pending_lengths.insert(track.fingerprint.clone());
        let (cache, tx) = (self.cache.clone(), self.lengths.0.clone());
        tokio::spawn(async move {
            let result = cache.track_parts(&key).await.map_err(|e| e.to_string());
            let _ = tx.send((key.fingerprint, result));
        });
    }

    /// The current track ends at `at`: play the next one from the queue, or silence.
    async fn advance(&mut self, at: u64) {
        // A track that cannot be played is skipped; give up after a full pass of the queue.
        for _ in 0..=self.timeline.queue.len() {
            match self.timeline.next_index(true) {
                Some(i) => match self.start_queue_at(at, i).await {
                    Ok(()) => return,
                    Err(e) => {
                        self.timeline.error = Some(e.to_string());
                        self.timeline.queue_index = Some(i);
                        if self.timeline.repeat == super::Repeat::One {
                            break;
                        }
                    }
                },
                None => break,
            }
        }
        self.timeline.queue_index = None;
        self.timeline.stop(at);
    }

    /// After a restart: follow the queue through the time the server was down, so the room
    /// is where the wall clock says it should be.
    async fn catch_up(&mut self, now_part: u64) {
        for _ in 0..10_000 {
            let Some(Source::Track { track, .. }) = self.timeline.last().map(|e| e.source.clone()) else { return };
            if track.parts.is_none() {
                let key = self.key(&track);
                let length = self.cache.track_parts(&key).await.map_err(|e| e.to_string());
                self.set_length(&track.fingerprint, length);
            }
            let Some(end) = self.timeline.last_track_end() else { return };
            if end > now_part + LOOKAHEAD_PARTS {
                return;
            }
            if self.timeline.repeat == super::Repeat::One {
                // Jump whole loops at once.
                let len = track.parts.unwrap_or(0).max(1);
                let loops = (now_part.saturating_sub(end)) / len;
                let start = end + loops * len;
                self.timeline.play(start, track.clone(), 0);
                if start + len > now_part + LOOKAHEAD_PARTS {
                    return;
                }
                continue;
            }
            self.advance(end).await;
        }
    }

    /// Pins what the timeline still needs (so eviction spares it) and warms the next queued
    /// track, so it is encoded before the play head reaches it.
    async fn keep_ahead(&mut self) {
        let mut keys: Vec<SourceKey> = self
            .timeline
            .entries
            .iter()
            .filter_map(|e| match &e.source {
                Source::Track { track, .. } => Some(self.key(track)),
                Source::Silence => None,
            })
            .collect();
        if let Some(p) = &self.timeline.paused {
            keys.push(self.key(&p.track));
        }
        let next = self.timeline.queue_index.map(|i| i + 1).unwrap_or(0);
        if let Some(&id) = self.timeline.queue.get(next) {
            if let Ok(source) = self.library.call(move |db| db.track_source(id)).await {
                let key = SourceKey { fingerprint: source.fingerprint, path: self.source_path(&source.relpath) };
                if !source.missing && self.cache.known_parts(&key).is_none() {
                    self.cache.warm(&key);
                }
                keys.push(key);
            }
        }
        self.cache.set_pinned(keys);
    }

    /// Publishes the state heard from the latest decision on (a command or the next track).
    async fn publish_latest(&mut self) {
        let t = &self.timeline;
        let at = t.last().map(|e| e.start_part).unwrap_or(0).max(t.changed_at_part);
        self.publish(at).await;
    }

    /// Publishes the timeline snapshot and the state heard from grid part `at`; persists the
    /// timeline and broadcasts a changed state.
    async fn publish(&mut self, at: u64) {
        let snapshot = Arc::new(self.timeline.clone());
        self.timeline_tx.send_replace(snapshot);
        self.keep_ahead().await;
        let state = Arc::new(self.session_state(at).await);
        let changed = **self.state_tx.borrow() != *state;
        self.state_tx.send_replace(state.clone());
        if changed {
            let _ = self.events.send(state);
        }
        match serde_json::to_string(&self.timeline) {
            Ok(json) => {
                if let Err(e) = self.library.call(move |db| Ok(db.set_room_state(ROOM, &json)?)).await {
                    tracing::error!(error = %e, "cannot save the room state");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize the room state"),
        }
    }

    async fn meta(&mut self, ids: &[TrackId]) -> HashMap<TrackId, Track> {
        let missing: Vec<TrackId> = ids.iter().filter(|id| !self.meta.contains_key(id)).copied().collect();
        if !missing.is_empty() {
            if let Ok(tracks) = self.library.call(move |db| db.tracks_by_id(&missing)).await {
                for t in tracks {
                    self.meta.insert(t.id, t);
                }
            }
        }
        ids.iter().filter_map(|id| self.meta.get(id).map(|m| (*id, m.clone()))).collect()
    }

    /// The state heard from grid part `at` on.
    async fn session_state(&mut self, at: u64) -> SessionState {
        let t = &self.timeline;
        let current = t.current(at);
        let start = t.queue_index.unwrap_or(0).saturating_sub(MAX_QUEUE_ITEMS / 2);
        let listed: Vec<TrackId> = t.queue.iter().skip(start).take(MAX_QUEUE_ITEMS).copied().collect();
        let mut ids = listed.clone();
        if let Some((track, _, _)) = &current {
            ids.push(track.id);
        }
        let (paused, stopped, repeat, shuffle, volume, queue_index, error) =
            (t.paused.is_some(), current.is_none(), t.repeat, t.shuffle, t.volume, t.queue_index, t.error.clone());
        let meta = self.meta(&ids).await;
        let now_playing = current.and_then(|(track, index, _)| {
            let m = meta.get(&track.id)?;
            Some(NowPlaying {
                track_id: track.id,
                title: m.title.clone(),
                artist: m.artist.clone(),
                album: m.album.clone(),
                duration: m.duration,
                position: (index * PART_MS) as f64 / 1000.0,
                has_cover: m.has_cover,
            })
        });
        let queue = listed
            .iter()
            .filter_map(|id| meta.get(id))
            .map(|m| QueueItem { track_id: m.id, title: m.title.clone(), artist: m.artist.clone(), duration: m.duration })
            .collect();
        let effective_at_ms = at * PART_MS;
        SessionState {
            now_playing,
            paused,
            stopped,
            queue,
            queue_index,
            repeat,
            shuffle,
            volume,
            playback_delay_ms: self.playback_delay_ms,
            effective_at: iso8601_ms(effective_at_ms),
            effective_at_ms,
            error,
        }
    }
}

fn empty_state(playback_delay_ms: u64) -> SessionState {
    SessionState {
        now_playing: None,
        paused: false,
        stopped: true,
        queue: Vec::new(),
        queue_index: None,
        repeat: super::Repeat::Off,
        shuffle: false,
        volume: 1.0,
        playback_delay_ms,
        effective_at: iso8601_ms(0),
        effective_at_ms: 0,
        error: None,
    }
}

/// The track part that contains `position` seconds.
fn position_part(position: f64) -> AppResult<u64> {
    if !position.is_finite() || position < 0.0 {
        return Err(AppError::BadRequest("position is a number of seconds ≥ 0".into()));
    }
    Ok((position * 1000.0 / PART_MS as f64).floor() as u64)
}
