//! The room actor: the only writer of the timeline.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::apply::{self, Tracks};
use super::delay::{Delay, DelayBounds, DelayStatus, ListenerReport, Reports};
use super::timeline::{part_at, Scheduled, Source, Timeline, TrackRef, PART_MS, RENDER_AHEAD_MS};
use super::{Command, Error, LayerItem, NowPlaying, QueueItem, Repeat, SessionState};
use crate::cache::{SegmentCache, SourceKey};
use crate::clock::{iso8601_ms, unix_ms, Clock};
use crate::ids::{FolderId, SceneId, TrackId};
use crate::library::model::Track;
use crate::library::Library;
use crate::scene::SceneSpec;

/// A command is aimed at the first part final at least this many ms from now (see
/// [`RENDER_AHEAD_MS`]): the time its database lookups usually take, with room to spare.
const SAFETY_MS: u64 = 20;
/// A command whose part is final within this many ms once it is worked out (the database
/// was slow) is worked out again for a later part: a rendered part never changes.
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
/// How often the playback delay follows the listeners' reports, ms.
const DELAY_TICK_MS: u64 = 1000;

type Reply = oneshot::Sender<Result<SessionState, Error>>;

/// A track's exact length in parts, or why it could not be measured, by fingerprint.
/// A track's length as the cache measured it: (fingerprint, (parts, samples) or why not).
type MeasuredLength = (String, Result<(u64, Option<u64>), String>);

/// How a room is set up.
#[derive(Debug, Clone, Copy)]
pub struct RoomOptions {
    /// The least playback delay D, ms: where D starts and the floor it adapts down to.
    pub playback_delay_ms: u64,
    /// The most D adapts up to, ms.
    pub max_playback_delay_ms: u64,
    /// Seed of the shuffle RNG, so a test or a simulation can replay a shuffle; random when `None`.
    pub shuffle_seed: Option<u64>,
}

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
    /// The latest part whose timeline is final ([`RENDER_AHEAD_MS`] before it is published).
    finalized: watch::Receiver<u64>,
    /// Listeners' recent reports, for the playback delay.
    reports: Arc<Mutex<Reports>>,
    /// Cancelled when the room is told to stop: the actor and the part clock end.
    stopped: CancellationToken,
    /// Cancelled once the actor has ended (its last save is done).
    ended: CancellationToken,
}

impl RoomHandle {
    /// Stops the room where it is, as a crash would (what it saved is what a restart finds):
    /// the actor takes no more commands, the part clock and the part renderer end. Returns
    /// once the actor has finished what it was doing.
    pub async fn stop(&self) {
        self.stopped.cancel();
        self.ended.cancelled().await;
    }

    /// Resolves once the room is told to stop.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }

    /// What a listener reported at `at_ms`, for the playback delay.
    pub fn report(&self, client: &str, at_ms: u64, report: ListenerReport<'_>) {
        let delay_ms = self.state.borrow().delay.at(at_ms);
        if let Ok(mut reports) = self.reports.lock() {
            reports.record(client, at_ms, delay_ms, report);
        }
    }

    /// A listener left: its needs no longer count.
    pub fn forget_listener(&self, client: &str) {
        if let Ok(mut reports) = self.reports.lock() {
            reports.forget(client);
        }
    }

    /// Loads the persisted room `slug`, catches it up with the wall clock and starts the
    /// actor and the part clock.
    pub async fn start(
        slug: &str,
        library: Library,
        cache: SegmentCache,
        clock: Arc<dyn Clock>,
        options: RoomOptions,
    ) -> Result<RoomHandle, String> {
        let RoomOptions { playback_delay_ms, max_playback_delay_ms, shuffle_seed } = options;
        let room: Arc<str> = slug.into();
        let key = room.clone();
        let saved = library.call(move |db| Ok(db.room_state(&key)?)).await.map_err(|e| e.to_string())?;
        let timeline = saved
            .and_then(|json| match Timeline::from_saved(&json) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "the saved room state makes no sense; starting a stopped room");
                    None
                }
            })
            .unwrap_or_default();
        let now_part = part_at(unix_ms(clock.now()));
        let (timeline_tx, timeline_rx) = watch::channel(Arc::new(timeline.clone()));
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(64);
        let (published_tx, published_rx) = watch::channel(now_part);
        let (finalized_tx, finalized_rx) = watch::channel(now_part);
        let bounds =
            DelayBounds { floor_ms: playback_delay_ms, ceiling_ms: max_playback_delay_ms.max(playback_delay_ms) };
        let delay = Delay::new(bounds, timeline.delay_pin_ms);
        let reports = Arc::new(Mutex::new(Reports::default()));
        let measured = cache.measured();
        let mut actor = Actor {
            room,
            delay,
            reports: reports.clone(),
            timeline,
            library,
            cache,
            clock: clock.clone(),
            timeline_tx,
            state_tx: watch::channel(Arc::new(empty_state(playback_delay_ms))).0,
            events: events.clone(),
            meta: HashMap::new(),
            pending_lengths: Default::default(),
            lengths: mpsc::unbounded_channel(),
            measured,
            rng: shuffle_seed.map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64),
        };
        actor.catch_up(now_part).await;
        actor.publish_latest().await;
        let state = actor.state_tx.subscribe();
        let (stopped, ended) = (CancellationToken::new(), CancellationToken::new());
        let run = actor.run(commands_rx, stopped.clone());
        let ended_guard = ended.clone().drop_guard();
        tokio::spawn(async move {
            run.await;
            drop(ended_guard);
        });
        tokio::spawn(part_clock(clock, published_tx, finalized_tx, stopped.clone()));
        Ok(RoomHandle {
            requests: commands_tx,
            timeline: timeline_rx,
            state,
            events,
            published: published_rx,
            finalized: finalized_rx,
            reports,
            stopped,
            ended,
        })
    }

    /// Runs a command; the answer is the new state with its `effectiveAt`.
    pub async fn command(&self, command: Command) -> Result<SessionState, Error> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Command(command, tx))
            .await
            .map_err(|_| Error::Unavailable("the room is shutting down".into()))?;
        rx.await.map_err(|_| Error::Unavailable("the room is shutting down".into()))?
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

    /// The latest grid part whose timeline is final: no command changes it any more.
    pub fn finalized(&self) -> watch::Receiver<u64> {
        self.finalized.clone()
    }
}

/// Publishes the part number at each part boundary of the wall clock, and the part whose
/// timeline becomes final [`RENDER_AHEAD_MS`] before each.
async fn part_clock(
    clock: Arc<dyn Clock>,
    published: watch::Sender<u64>,
    finalized: watch::Sender<u64>,
    stopped: CancellationToken,
) {
    let advance = |tx: &watch::Sender<u64>, part: u64| {
        tx.send_if_modified(|p| {
            let newer = part > *p;
            *p = (*p).max(part);
            newer
        })
    };
    loop {
        let now = unix_ms(clock.now());
        advance(&published, part_at(now));
        advance(&finalized, part_at(now + RENDER_AHEAD_MS));
        let next_published = (part_at(now) + 1) * PART_MS;
        let next_final = (part_at(now + RENDER_AHEAD_MS) + 1) * PART_MS - RENDER_AHEAD_MS;
        let wait = next_published.min(next_final).saturating_sub(now).max(1);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(wait)) => {}
            () = stopped.cancelled() => return,
        }
        if published.is_closed() && published.receiver_count() == 0 {
            return;
        }
    }
}

struct Actor {
    /// The room's slug, under which its timeline is saved.
    room: Arc<str>,
    /// The playback delay D and how it adapts.
    delay: Delay,
    reports: Arc<Mutex<Reports>>,
    timeline: Timeline,
    library: Library,
    cache: SegmentCache,
    clock: Arc<dyn Clock>,
    timeline_tx: watch::Sender<Arc<Timeline>>,
    state_tx: watch::Sender<Arc<SessionState>>,
    events: broadcast::Sender<Arc<SessionState>>,
    /// Tracks named in state messages, by id.
    meta: HashMap<TrackId, Track>,
    /// Fingerprints whose exact length is being measured.
    pending_lengths: std::collections::HashSet<String>,
    /// Track lengths measured off the actor, as (fingerprint, parts or why not).
    lengths: (mpsc::UnboundedSender<MeasuredLength>, mpsc::UnboundedReceiver<MeasuredLength>),
    /// Loudness as each encode measures it, (fingerprint, LUFS): a track put on the stage
    /// before it was encoded (a one-shot fired at once) is matched as soon as it is known.
    measured: broadcast::Receiver<(String, Option<f64>)>,
    /// Shuffles draw from this.
    rng: StdRng,
}

impl Actor {
    #[tracing::instrument(name = "room", skip_all, fields(room = %self.room))]
    async fn run(mut self, mut requests: mpsc::Receiver<Request>, stopped: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut delay_tick = tokio::time::interval(Duration::from_millis(DELAY_TICK_MS));
        delay_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopped.cancelled() => return,
                request = requests.recv() => match request {
                    None => return,
                    Some(Request::Maintain(done)) => {
                        self.maintain_and_publish().await;
                        let _ = done.send(());
                    }
                    Some(Request::Command(command, reply)) => {
                        let answer = self.command(command).await;
                        let _ = reply.send(answer);
                        self.maintain_and_publish().await;
                    }
                },
                Some((fingerprint, length)) = self.lengths.1.recv() => {
                    self.pending_lengths.remove(&fingerprint);
                    let before = self.timeline.clone();
                    self.set_length(&fingerprint, length);
                    // At once: a level learnt with the length is heard from the next part.
                    if self.timeline != before {
                        self.publish_latest().await;
                    }
                    self.maintain_and_publish().await;
                }
                Ok((fingerprint, Some(lufs))) = self.measured.recv() => {
                    let before = self.timeline.clone();
                    let at = self.effective_part();
                    self.timeline.learn_loudness(&fingerprint, lufs, at);
                    if self.timeline != before {
                        self.publish_latest().await;
                    }
                }
                _ = tick.tick() => self.maintain_and_publish().await,
                _ = delay_tick.tick() => self.adapt_delay().await,
            }
        }
    }

    /// Runs one command and publishes what it changed. A panic while applying it is a bug:
    /// it is logged, the timeline stays as it was and the room carries on.
    async fn command(&mut self, command: Command) -> Result<SessionState, Error> {
        let before = self.timeline.clone();
        let applied = AssertUnwindSafe(self.apply_before_its_part(&command)).catch_unwind().await;
        let result = applied.unwrap_or_else(|panic| {
            self.timeline = before;
            let message = panic_message(panic.as_ref());
            tracing::error!(?command, panic = %message, "a command panicked; the room is unchanged");
            Err(Error::Internal(message))
        });
        match result {
            Ok(()) => {
                if self.timeline.delay_pin_ms.is_some() != self.delay.status().pinned
                    || self.timeline.delay_pin_ms.is_some_and(|ms| ms != self.delay.status().target_ms)
                {
                    self.delay.pin(self.timeline.delay_pin_ms);
                    self.delay.update(self.now_ms(), &[]);
                }
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
        }
    }

    /// Lets D follow the listeners' needs (or the GM's pin) and publishes a change.
    async fn adapt_delay(&mut self) {
        let needs = match self.reports.lock() {
            Ok(mut reports) => reports.needs(self.now_ms()),
            Err(_) => Vec::new(),
        };
        let before = self.delay.status().clone();
        let moved = self.delay.update(self.now_ms(), &needs);
        if moved {
            tracing::info!(delay_ms = self.delay.current_ms(), set_by = ?self.delay.status().set_by, "playback delay");
        }
        if *self.delay.status() != before {
            self.publish_latest().await;
        }
    }

    /// Looks ahead and publishes when that changed the timeline; a panic is logged and the
    /// timeline kept as it was.
    async fn maintain_and_publish(&mut self) {
        let before = self.timeline.clone();
        match AssertUnwindSafe(self.maintain()).catch_unwind().await {
            Ok(true) => self.publish_latest().await,
            Ok(false) => {}
            Err(panic) => {
                self.timeline = before;
                tracing::error!(panic = %panic_message(panic.as_ref()), "the look-ahead panicked; the room is unchanged");
            }
        }
    }

    fn now_ms(&self) -> u64 {
        unix_ms(self.clock.now())
    }

    /// The first part a command may change.
    fn effective_part(&self) -> u64 {
        part_at(self.now_ms() + RENDER_AHEAD_MS + SAFETY_MS) + 1
    }

    /// Applies `command` from the first part still unpublished once it is worked out. A
    /// refused command changes nothing, not even a scheduled advance.
    async fn apply_before_its_part(&mut self, command: &Command) -> Result<(), Error> {
        for _ in 0..COMMAND_ATTEMPTS {
            let before = self.timeline.clone();
            let at = self.effective_part();
            let mut tracks = RoomTracks { library: &self.library, cache: &self.cache, meta: &mut self.meta };
            match apply::apply(&mut self.timeline, command.clone(), at, &mut tracks, &mut self.rng).await {
                Ok(()) if at * PART_MS > self.now_ms() + RENDER_AHEAD_MS + PUBLISH_MARGIN_MS => return Ok(()),
                Ok(()) => self.timeline = before,
                Err(e) => {
                    self.timeline = before;
                    return Err(e);
                }
            }
        }
        Err(Error::Unavailable("the room is too busy to take commands; try again".into()))
    }

    /// The current track ends at grid part `end`: the next one from the queue (a crossfade
    /// earlier, not before `earliest`), or silence. Returns the part where it starts.
    async fn advance(&mut self, end: u64, earliest: u64) -> u64 {
        let crossfade_parts = self.crossfade_parts();
        let mut tracks = RoomTracks { library: &self.library, cache: &self.cache, meta: &mut self.meta };
        apply::advance(&mut self.timeline, end, crossfade_parts, earliest, &mut tracks, &mut self.rng).await
    }

    /// Parts by which the next track starts before the current one ends (none at the
    /// queue's end, where silence follows the track's end).
    fn crossfade_parts(&self) -> u64 {
        match self.timeline.repeat {
            Repeat::One => 0,
            _ if !self.timeline.has_next() => 0,
            _ => u64::from(self.timeline.crossfade_ms).div_ceil(PART_MS),
        }
    }

    /// The first part after the last entry's start: an advance must not replace it.
    fn after_last_start(&self) -> u64 {
        self.timeline.last().map_or(0, |e| e.start_part + 1)
    }

    fn key(&self, track: &TrackRef) -> SourceKey {
        SourceKey { fingerprint: track.fingerprint.clone(), path: self.library.path_of(&track.relpath) }
    }

    /// Records a track's exact length (or its failure) everywhere it appears.
    fn set_length(&mut self, fingerprint: &str, length: Result<(u64, Option<u64>), String>) {
        let (parts, samples) = match length {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "a track could not be decoded; skipping it");
                self.timeline.error = Some(e);
                (0, Some(0))
            }
        };
        for e in &mut self.timeline.entries {
            if let Source::Track { track, .. } = &mut e.source {
                if track.fingerprint == fingerprint {
                    track.parts = Some(parts);
                    track.samples = samples;
                }
            }
        }
        if let Some(p) = &mut self.timeline.paused {
            if p.track.fingerprint == fingerprint {
                p.track.parts = Some(parts);
                p.track.samples = samples;
            }
        }
        self.learn_loudness(fingerprint);
    }

    /// A track put on the timeline before it was encoded is matched in loudness once the
    /// encode has measured it.
    fn learn_loudness(&mut self, fingerprint: &str) {
        let track = self.timeline.entries.iter().find_map(|e| match &e.source {
            Source::Track { track, .. } if track.fingerprint == fingerprint => Some(track.clone()),
            _ => None,
        });
        let Some(track) = track.filter(|t| t.loudness_lufs.is_none()) else { return };
        if let Some(lufs) = self.cache.known_loudness(&self.key(&track)) {
            let at = self.effective_part();
            self.timeline.learn_loudness(fingerprint, lufs, at);
        }
    }

    /// Keeps the timeline ahead of the clock: learns track lengths, schedules the next
    /// track before the current one ends, forgets old entries. True when something changed.
    async fn maintain(&mut self) -> bool {
        let now_part = part_at(self.now_ms());
        let before = self.timeline.clone();
        self.learn_last_length();
        if let Some(end) = self.timeline.last_track_end() {
            // The next track starts a crossfade before this one ends.
            let earliest = self.after_last_start();
            if end.saturating_sub(self.crossfade_parts()).max(earliest) <= now_part + LOOKAHEAD_PARTS {
                let previous_index = self.timeline.queue_index;
                let at = self.advance(end, earliest.max(self.effective_part())).await;
                // A gapless pass is heard from the part before it starts.
                let heard =
                    if self.timeline.last().is_some_and(|e| e.early_samples > 0) { at.saturating_sub(1) } else { at };
                if heard * PART_MS <= self.now_ms() + RENDER_AHEAD_MS + PUBLISH_MARGIN_MS {
                    // Its lookups took so long that the part is final: again at the next tick.
                    self.timeline = before;
                    return false;
                }
                self.timeline.scheduled = Some(Scheduled { at, previous_index });
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
            self.set_length(&track.fingerprint, Ok((n, self.cache.known_samples(&key))));
            return;
        }
        self.pending_lengths.insert(track.fingerprint.clone());
        let (cache, tx) = (self.cache.clone(), self.lengths.0.clone());
        tokio::spawn(async move {
            let result =
                cache.track_parts(&key).await.map(|n| (n, cache.known_samples(&key))).map_err(|e| e.to_string());
            let _ = tx.send((key.fingerprint, result));
        });
    }

    /// After a restart: follow the queue through the time the server was down, so the room
    /// is where the wall clock says it should be.
    async fn catch_up(&mut self, now_part: u64) {
        for _ in 0..10_000 {
            let Some(Source::Track { track, .. }) = self.timeline.last().map(|e| e.source.clone()) else { return };
            if track.parts.is_none() {
                let key = self.key(&track);
                let length = self
                    .cache
                    .track_parts(&key)
                    .await
                    .map(|n| (n, self.cache.known_samples(&key)))
                    .map_err(|e| e.to_string());
                self.set_length(&track.fingerprint, length);
            }
            let Some(end) = self.timeline.last_track_end() else { return };
            if end > now_part + LOOKAHEAD_PARTS {
                return;
            }
            if self.timeline.repeat == Repeat::One {
                // Jump whole loops at once.
                let len = track.parts.unwrap_or(0).max(1);
                let loops = (now_part.saturating_sub(end)) / len;
                let start = end.saturating_add(loops.saturating_mul(len));
                self.timeline.play(start, track.clone(), 0);
                if start.saturating_add(len) > now_part + LOOKAHEAD_PARTS {
                    return;
                }
                continue;
            }
            let earliest = self.after_last_start();
            self.advance(end, earliest).await;
        }
    }

    /// Pins what the timeline still needs (music, ambience loops and one-shots, so eviction
    /// spares them) and warms the next queued track, so it is encoded before the play head
    /// reaches it.
    async fn keep_ahead(&mut self) {
        let t = &self.timeline;
        let music = t.entries.iter().filter_map(|e| match &e.source {
            Source::Track { track, .. } => Some(track),
            Source::Silence => None,
        });
        let ambience = t.layers.iter().map(|l| &l.track);
        let oneshots = t.oneshots.iter().map(|o| &o.track);
        let mut keys: Vec<SourceKey> = music.chain(ambience).chain(oneshots).map(|track| self.key(track)).collect();
        if let Some(p) = &self.timeline.paused {
            keys.push(self.key(&p.track));
        }
        let next = self.timeline.queue_index.map(|i| i + 1).unwrap_or(0);
        if let Some(&id) = self.timeline.queue.get(next) {
            if let Ok(source) = self.library.call(move |db| db.track_source(id)).await {
                let key = SourceKey { fingerprint: source.fingerprint, path: self.library.path_of(&source.relpath) };
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
                let room = self.room.clone();
                if let Err(e) = self.library.call(move |db| Ok(db.set_room_state(&room, &json)?)).await {
                    tracing::error!(error = %e, "cannot save the room state");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize the room state"),
        }
    }

    /// The library's details of `ids`, remembered. When the lookup fails the error is
    /// logged and those tracks are left out of the answer (callers show them as unknown).
    async fn meta(&mut self, ids: &[TrackId]) -> HashMap<TrackId, Track> {
        let missing: Vec<TrackId> = ids.iter().filter(|id| !self.meta.contains_key(id)).copied().collect();
        if !missing.is_empty() {
            match self.library.call(move |db| db.tracks_by_id(&missing)).await {
                Ok(tracks) => {
                    for t in tracks {
                        self.meta.insert(t.id, t);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the details of queued tracks; listing them as unknown")
                }
            }
        }
        ids.iter().filter_map(|id| self.meta.get(id).map(|m| (*id, m.clone()))).collect()
    }

    /// The state heard from grid part `at` on.
    async fn session_state(&mut self, at: u64) -> SessionState {
        let (start, listed) = queue_window(&self.timeline);
        let mut ids = self.timeline.queue[start..start + listed].to_vec();
        if let Some((track, _, _)) = self.timeline.current(at) {
            ids.push(track.id);
        }
        ids.extend(self.timeline.active_layers(at).map(|l| l.track.id));
        let meta = self.meta(&ids).await;
        describe(&self.timeline, at, &meta, self.delay.status())
    }
}

/// The part of the queue a state lists: its first position and how many.
fn queue_window(t: &Timeline) -> (usize, usize) {
    let start = t.queue_index.unwrap_or(0).saturating_sub(MAX_QUEUE_ITEMS / 2).min(t.queue.len());
    (start, (t.queue.len() - start).min(MAX_QUEUE_ITEMS))
}

/// The state of `t` heard from grid part `at` on, with tracks described from `meta`. A
/// track missing from `meta` is listed all the same (with an empty title), so positions
/// stay true.
fn describe(t: &Timeline, at: u64, meta: &HashMap<TrackId, Track>, delay: &DelayStatus) -> SessionState {
    let current = t.current(at);
    let stopped = current.is_none();
    let now_playing = current.map(|(track, index, _)| {
        let m = meta.get(&track.id);
        NowPlaying {
            track_id: track.id,
            title: m.map(|m| m.title.clone()).unwrap_or_default(),
            artist: m.and_then(|m| m.artist.clone()),
            album: m.and_then(|m| m.album.clone()),
            duration: m.map_or(track.duration_ms as f64 / 1000.0, |m| m.duration),
            position: index.saturating_mul(PART_MS) as f64 / 1000.0,
            has_cover: m.is_some_and(|m| m.has_cover),
        }
    });
    let (queue_start, listed) = queue_window(t);
    let queue = t.queue[queue_start..queue_start + listed]
        .iter()
        .map(|id| match meta.get(id) {
            Some(m) => {
                QueueItem { track_id: *id, title: m.title.clone(), artist: m.artist.clone(), duration: m.duration }
            }
            None => QueueItem { track_id: *id, title: String::new(), artist: None, duration: 0.0 },
        })
        .collect();
    let effective_at_ms = at.saturating_mul(PART_MS);
    SessionState {
        now_playing,
        paused: t.paused.is_some(),
        stopped,
        queue,
        queue_start,
        queue_length: t.queue.len(),
        queue_index: t.queue_index,
        repeat: t.repeat,
        shuffle: t.shuffle,
        volume: t.volume,
        crossfade_seconds: f64::from(t.crossfade_ms) / 1000.0,
        normalize: t.normalize,
        target_lufs: t.target_lufs,
        layers: t
            .active_layers(at)
            .map(|l| LayerItem {
                id: l.id,
                track_id: l.track.id,
                title: meta.get(&l.track.id).map(|m| m.title.clone()).unwrap_or_default(),
                gain: l.gain(),
            })
            .collect(),
        duck_db: Some(t.ducked_db(at)).filter(|&db| db < 0.0),
        tick: t.ticking(at),
        queue_folder_id: t.queue_folder,
        scene: t.scene.clone(),
        playback_delay_ms: delay.current_ms,
        delay: delay.clone(),
        effective_at: iso8601_ms(effective_at_ms),
        effective_at_ms,
        error: t.error.clone(),
    }
}

/// The library and the segment cache, as commands see them: looking a track up also keeps
/// its details for state messages and starts encoding it if it is not cached.
struct RoomTracks<'a> {
    library: &'a Library,
    cache: &'a SegmentCache,
    meta: &'a mut HashMap<TrackId, Track>,
}

impl Tracks for RoomTracks<'_> {
    async fn track(&mut self, id: TrackId) -> Result<TrackRef, Error> {
        let (track, source) = self.library.call(move |db| Ok((db.track(id)?, db.track_source(id)?))).await?;
        if source.missing {
            return Err(Error::Conflict(format!("the file of \"{}\" is missing", track.title)));
        }
        let key = SourceKey { fingerprint: source.fingerprint.clone(), path: self.library.path_of(&source.relpath) };
        let parts = self.cache.known_parts(&key);
        if parts.is_none() {
            self.cache.warm(&key);
        }
        let duration_ms = (track.duration * 1000.0).round() as u64;
        self.meta.insert(id, track);
        // Loudness is known once the track was encoded; the timeline fixes the gain it implies.
        let loudness_lufs = self.cache.known_loudness(&key);
        Ok(TrackRef {
            id,
            fingerprint: source.fingerprint,
            relpath: source.relpath,
            parts,
            samples: self.cache.known_samples(&key),
            duration_ms,
            loudness_lufs,
            gain_db: 0.0,
        })
    }

    async fn folder(&mut self, id: FolderId) -> Result<Vec<TrackId>, Error> {
        Ok(self.library.call(move |db| db.folder_track_ids(id)).await?)
    }

    async fn samples(&mut self, track: &TrackRef) -> Result<u64, Error> {
        let key = SourceKey { fingerprint: track.fingerprint.clone(), path: self.library.path_of(&track.relpath) };
        self.cache.track_samples(&key).await.map_err(|e| Error::Conflict(e.to_string()))
    }

    async fn scene(&mut self, id: SceneId) -> Result<SceneSpec, Error> {
        Ok(self.library.call(move |db| db.scene_spec(id)).await?)
    }

    async fn check_known(&mut self, ids: &[TrackId]) -> Result<(), Error> {
        let unique: Vec<TrackId> = ids.iter().copied().collect::<HashSet<_>>().into_iter().collect();
        let wanted = unique.len();
        let found = self.library.call(move |db| db.tracks_by_id(&unique)).await?;
        if found.len() == wanted {
            Ok(())
        } else {
            Err(Error::NotFound("track"))
        }
    }
}

/// What a caught panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

fn empty_state(playback_delay_ms: u64) -> SessionState {
    let delay = DelayStatus {
        current_ms: playback_delay_ms,
        target_ms: playback_delay_ms,
        pinned: false,
        set_by: None,
        cannot_keep_up: Vec::new(),
        ramp: None,
    };
    SessionState {
        delay,
        now_playing: None,
        paused: false,
        stopped: true,
        queue: Vec::new(),
        queue_start: 0,
        queue_length: 0,
        queue_index: None,
        repeat: Repeat::Off,
        shuffle: false,
        volume: 1.0,
        crossfade_seconds: f64::from(super::timeline::DEFAULT_CROSSFADE_MS) / 1000.0,
        normalize: true,
        target_lufs: super::timeline::DEFAULT_TARGET_LUFS,
        layers: Vec::new(),
        duck_db: None,
        tick: false,
        queue_folder_id: None,
        scene: None,
        playback_delay_ms,
        effective_at: iso8601_ms(0),
        effective_at_ms: 0,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: i64, title: &str) -> Track {
        Track {
            id: TrackId(id),
            filepath: format!("{title}.flac"),
            filename: format!("{title}.flac"),
            title: title.into(),
            artist: None,
            album: None,
            track_number: None,
            disc_number: None,
            duration: 10.0,
            format: "flac".into(),
            bitrate: None,
            sample_rate: None,
            channels: None,
            file_size: 1,
            missing: false,
            has_cover: false,
            loudness_lufs: None,
        }
    }

    #[test]
    fn a_long_queue_is_listed_around_the_current_track_with_absolute_positions() {
        let mut t = Timeline {
            queue: (0..1200).map(|i| TrackId(i % 7)).collect(),
            queue_index: Some(900),
            ..Timeline::default()
        };
        let state = describe(&t, 0, &HashMap::new(), &empty_state(400).delay);
        assert_eq!((state.queue_start, state.queue_length, state.queue_index), (400, 1200, Some(900)));
        assert_eq!(state.queue.len(), 800, "positions 400..1200");
        assert_eq!(state.queue[900 - 400].track_id, t.queue[900]);
        t.queue_index = Some(3);
        let state = describe(&t, 0, &HashMap::new(), &empty_state(400).delay);
        assert_eq!((state.queue_start, state.queue.len()), (0, MAX_QUEUE_ITEMS));
    }

    #[test]
    fn tracks_whose_details_are_unknown_keep_their_place() {
        let t = Timeline { queue: vec![TrackId(1), TrackId(2), TrackId(3)], ..Timeline::default() };
        let meta = HashMap::from([(TrackId(1), track(1, "One")), (TrackId(3), track(3, "Three"))]);
        let state = describe(&t, 0, &meta, &empty_state(400).delay);
        let listed: Vec<(TrackId, &str)> = state.queue.iter().map(|q| (q.track_id, q.title.as_str())).collect();
        assert_eq!(listed, [(TrackId(1), "One"), (TrackId(2), ""), (TrackId(3), "Three")]);
    }
}
