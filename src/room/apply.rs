//! What each GM command does to the timeline: one small function per command.
//!
//! Everything here is plain logic over a [`Timeline`]: the library is reached through the
//! [`Tracks`] trait and randomness through an injected RNG, so tests drive it without a
//! clock, a database or HTTP, and a seeded RNG replays a shuffle.

use rand::seq::IndexedRandom;
use rand::Rng;

use super::ambience::{DEFAULT_LAYER_FADE_MS, MAX_LAYERS};
use super::command::{Command, LayerAction, OneShotSource, PadChoice, Play, QueueAction, Settings};
use super::timeline::{ActiveScene, Repeat, Timeline, TrackRef, PART_MS};
use super::Error;
use crate::ids::{FolderId, SceneId, TrackId};
use crate::scene::{SceneLayer, SceneMusic, SceneSpec};

/// Pause, resume, stop and seek ramp over this long instead of clicking, ms.
pub const ENVELOPE_MS: u32 = 250;

/// "Previous" restarts the current track when it has played longer than this, ms.
const RESTART_AFTER_MS: u64 = 3000;

/// What commands need from the library.
pub(crate) trait Tracks {
    /// A playable reference to track `id`: `NotFound` when unknown, `Conflict` when its file
    /// is missing.
    async fn track(&mut self, id: TrackId) -> Result<TrackRef, Error>;
    /// A folder's tracks in order; `NotFound` when there is no such folder.
    async fn folder(&mut self, id: FolderId) -> Result<Vec<TrackId>, Error>;
    /// `NotFound` unless every id is a known track.
    async fn check_known(&mut self, ids: &[TrackId]) -> Result<(), Error>;
    /// The track's exact length in samples, encoding it first if needed (for a gapless loop).
    async fn samples(&mut self, track: &TrackRef) -> Result<u64, Error>;
    /// What a scene plays; `NotFound` when there is no such scene.
    async fn scene(&mut self, id: SceneId) -> Result<SceneSpec, Error>;
}

/// A scene's music folder is tried from this many of its tracks before it counts as unplayable.
const SCENE_MUSIC_TRIES: usize = 20;

/// Applies `command` to `t` from grid part `at` on. On an error `t` may be half changed:
/// the caller keeps a copy and puts it back.
pub(crate) async fn apply(
    t: &mut Timeline,
    command: Command,
    at: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
) -> Result<(), Error> {
    // A command sees the room as it is heard, not a queue advance decided ahead of time;
    // the look-ahead decides again afterwards.
    t.unschedule(at);
    if matches!(command, Command::Play(_) | Command::Next | Command::Previous | Command::Stop) {
        // The GM chose what plays next: an old playback problem is no longer news.
        t.error = None;
    }
    let fade_ms = match command {
        Command::Play(_) | Command::Next | Command::Previous => Some(t.crossfade_ms),
        Command::Pause | Command::Resume | Command::Seek(_) | Command::Stop => Some(ENVELOPE_MS),
        _ => None,
    };
    apply_command(t, command, at, tracks, rng).await?;
    if let Some(fade_ms) = fade_ms {
        t.set_fade(at, fade_ms);
    }
    Ok(())
}

async fn apply_command(
    t: &mut Timeline,
    command: Command,
    at: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
) -> Result<(), Error> {
    match command {
        Command::Play(Play::Track { track_id, position }) => play_track(t, at, tracks, track_id, position).await,
        Command::Play(Play::Folder { folder_id, shuffle }) => play_folder(t, at, tracks, rng, folder_id, shuffle).await,
        Command::Pause => pause(t, at),
        Command::Resume => resume(t, at, tracks).await,
        Command::Seek(position) => seek(t, at, position),
        Command::Stop => {
            t.stop(at);
            Ok(())
        }
        Command::Next => next(t, at, tracks, rng).await,
        Command::Previous => previous(t, at, tracks).await,
        Command::Queue(action) => queue(t, action, tracks).await,
        Command::Repeat(mode) => {
            t.repeat = mode;
            Ok(())
        }
        Command::Shuffle(on) => {
            t.set_shuffle(on, rng);
            Ok(())
        }
        Command::Volume(volume) => {
            t.set_volume(at, volume);
            Ok(())
        }
        Command::Layer(action) => layer(t, at, tracks, action).await,
        Command::OneShot { source, gain } => oneshot(t, at, tracks, rng, source, gain).await,
        Command::Scene(id) => switch_scene(t, at, tracks, rng, id).await,
        Command::Pad(choice) => fire_pad(t, at, tracks, rng, choice).await,
        Command::Duck(db) => {
            t.duck(at, db.unwrap_or(0.0));
            Ok(())
        }
        Command::Tick(on) => {
            t.set_tick(at, on);
            Ok(())
        }
        Command::Settings(Settings { crossfade_ms, normalize, target_lufs }) => {
            if let Some(ms) = crossfade_ms {
                t.crossfade_ms = ms;
            }
            if let Some(on) = normalize {
                t.normalize = on;
            }
            if let Some(lufs) = target_lufs {
                t.target_lufs = lufs;
            }
            Ok(())
        }
        Command::Delay(ms) => {
            t.delay_pin_ms = ms;
            Ok(())
        }
    }
}

async fn oneshot(
    t: &mut Timeline,
    at: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
    source: OneShotSource,
    gain: f64,
) -> Result<(), Error> {
    let id = match source {
        OneShotSource::Track(id) => id,
        OneShotSource::Folder(folder) => {
            let ids = tracks.folder(folder).await?;
            *ids.choose(rng).ok_or_else(|| Error::Conflict("the folder has no tracks".into()))?
        }
    };
    let track = tracks.track(id).await?;
    t.add_oneshot(at, track, gain);
    Ok(())
}

/// Switches to scene `id` at `at`: its music (crossfading, unless it already plays), its
/// layers (those already playing glide to their new gain, the others fade out, new ones
/// fade in) and its pads. What cannot be played is skipped and listed in the room's scene.
async fn switch_scene(
    t: &mut Timeline,
    at: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
    id: SceneId,
) -> Result<(), Error> {
    let scene = tracks.scene(id).await?;
    let mut skipped = Vec::new();
    if let Some(seconds) = scene.crossfade_seconds {
        t.crossfade_ms = (seconds * 1000.0).round() as u32;
    }
    if let Some(music) = &scene.music {
        let before = t.clone();
        if let Err(e) = scene_music(t, at, tracks, rng, music).await {
            *t = before;
            skipped.push(format!("music: {e}"));
        }
    }
    scene_layers(t, at, tracks, &scene.layers, &mut skipped).await;
    for (i, pad) in scene.pads.iter().enumerate() {
        if let Some(id) = pad.track_id {
            // Warms the cache, so the pad's first press finds it encoded.
            if let Err(e) = tracks.track(id).await {
                skipped.push(format!("pad {}: {e}", i + 1));
            }
        }
    }
    t.scene = Some(ActiveScene { id, name: scene.name, skipped });
    t.changed_at_part = at;
    Ok(())
}

/// Plays a scene's music from `at`, unless it already plays (then it resumes if paused).
async fn scene_music(
    t: &mut Timeline,
    at: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
    music: &SceneMusic,
) -> Result<(), Error> {
    t.repeat = music.repeat;
    let current = t.current(at);
    let already = match (music.folder_id, music.track_id) {
        (Some(folder), _) => t.queue_folder == Some(folder) && current.is_some(),
        (None, Some(track)) => current.as_ref().is_some_and(|(playing, _, _)| playing.id == track),
        (None, None) => return Err(Error::Invalid("music: neither a folder nor a track".into())),
    };
    if already {
        if music.folder_id.is_some() {
            t.set_shuffle(music.shuffle, rng);
        }
        if t.resume(at) {
            t.set_fade(at, ENVELOPE_MS);
        }
        return Ok(());
    }
    match (music.folder_id, music.track_id) {
        (Some(folder), _) => {
            let ids = tracks.folder(folder).await?;
            if ids.is_empty() {
                return Err(Error::Conflict("the folder has no tracks".into()));
            }
            t.replace_queue(ids, music.shuffle, rng);
            t.queue_folder = Some(folder);
            let mut last = None;
            for i in 0..t.queue.len().min(SCENE_MUSIC_TRIES) {
                match start_queue_at(t, at, tracks, i).await {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
        (None, Some(track)) => play_track(t, at, tracks, track, 0.0).await?,
        (None, None) => {}
    }
    t.set_fade(at, t.crossfade_ms);
    Ok(())
}

/// Brings the layers to a scene's: shared tracks glide to their gain, the rest fade.
async fn scene_layers(
    t: &mut Timeline,
    at: u64,
    tracks: &mut impl Tracks,
    layers: &[SceneLayer],
    skipped: &mut Vec<String>,
) {
    let playing: Vec<(u64, TrackId, f64)> = t.active_layers(at).map(|l| (l.id, l.track.id, l.gain())).collect();
    let mut wanted: Vec<&SceneLayer> = layers.iter().collect();
    for (layer_id, track_id, gain) in playing {
        match wanted.iter().position(|w| w.track_id == track_id) {
            Some(i) => {
                let w = wanted.remove(i);
                if w.gain != gain {
                    t.set_layer_gain(at, layer_id, w.gain, DEFAULT_LAYER_FADE_MS);
                }
            }
            None => {
                t.remove_layer(at, layer_id, DEFAULT_LAYER_FADE_MS);
            }
        }
    }
    // Looked up first, all of them, so their encodes run side by side.
    let mut found = Vec::with_capacity(wanted.len());
    for w in wanted {
        match tracks.track(w.track_id).await {
            Ok(track) => found.push((track, w.gain)),
            Err(e) => skipped.push(format!("layer (track {}): {e}", w.track_id)),
        }
    }
    for (track, gain) in found {
        let id = track.id;
        let added = match tracks.samples(&track).await {
            Ok(loop_samples) => t
                .add_layer(at, track, loop_samples, gain, DEFAULT_LAYER_FADE_MS)
                .map(|_| ())
                .ok_or_else(|| Error::Conflict(format!("{MAX_LAYERS} layers already play"))),
            Err(e) => Err(e),
        };
        if let Err(e) = added {
            skipped.push(format!("layer (track {id}): {e}"));
        }
    }
}

/// Fires a pad of the scene playing, as a one-shot.
async fn fire_pad(
    t: &mut Timeline,
    at: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
    choice: PadChoice,
) -> Result<(), Error> {
    let id =
        t.scene.as_ref().map(|s| s.id).ok_or_else(|| Error::Conflict("no scene plays; switch to one first".into()))?;
    let scene = match tracks.scene(id).await {
        Err(Error::NotFound(_)) => return Err(Error::Conflict("the scene playing was deleted".into())),
        other => other?,
    };
    let pad = match &choice {
        PadChoice::Index(i) => scene.pads.get(*i).ok_or_else(|| {
            Error::Invalid(format!("index: {i} is not a pad of the scene, which has {}", scene.pads.len()))
        })?,
        PadChoice::Key(key) => {
            scene.pad_by_key(key).ok_or_else(|| Error::Invalid(format!("key: no pad of the scene is on {key:?}")))?
        }
    };
    let source = match (pad.track_id, pad.folder_id) {
        (Some(id), _) => OneShotSource::Track(id),
        (None, Some(id)) => OneShotSource::Folder(id),
        (None, None) => return Err(Error::Conflict("the pad plays nothing".into())),
    };
    oneshot(t, at, tracks, rng, source, pad.gain).await
}

async fn layer(t: &mut Timeline, at: u64, tracks: &mut impl Tracks, action: LayerAction) -> Result<(), Error> {
    let missing = |id: u64| Error::Conflict(format!("no layer {id} is playing"));
    match action {
        LayerAction::Add { track_id, gain, fade_ms } => {
            let track = tracks.track(track_id).await?;
            let loop_samples = tracks.samples(&track).await?;
            t.add_layer(at, track, loop_samples, gain, fade_ms)
                .map(|_| ())
                .ok_or_else(|| Error::Conflict(format!("{MAX_LAYERS} layers already play; remove one first")))
        }
        LayerAction::Gain { layer_id, gain, fade_ms } => {
            t.set_layer_gain(at, layer_id, gain, fade_ms).then_some(()).ok_or_else(|| missing(layer_id))
        }
        LayerAction::Remove { layer_id, fade_ms } => {
            t.remove_layer(at, layer_id, fade_ms).then_some(()).ok_or_else(|| missing(layer_id))
        }
        LayerAction::Clear { fade_ms } => {
            t.clear_layers(at, fade_ms);
            Ok(())
        }
    }
}

async fn play_track(
    t: &mut Timeline,
    at: u64,
    tracks: &mut impl Tracks,
    id: TrackId,
    position: f64,
) -> Result<(), Error> {
    let track = tracks.track(id).await?;
    let from = part_within(&track, position)?;
    t.select_in_queue(id);
    t.play(at, track, from);
    Ok(())
}

async fn play_folder(
    t: &mut Timeline,
    at: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
    folder: FolderId,
    shuffle: bool,
) -> Result<(), Error> {
    let ids = tracks.folder(folder).await?;
    if ids.is_empty() {
        return Err(Error::Conflict("the folder has no tracks".into()));
    }
    t.replace_queue(ids, shuffle, rng);
    t.queue_folder = Some(folder);
    start_queue_at(t, at, tracks, 0).await
}

fn pause(t: &mut Timeline, at: u64) -> Result<(), Error> {
    if t.pause(at) {
        Ok(())
    } else {
        Err(Error::Conflict("nothing is playing".into()))
    }
}

async fn resume(t: &mut Timeline, at: u64, tracks: &mut impl Tracks) -> Result<(), Error> {
    if t.resume(at) {
        return Ok(());
    }
    // Nothing paused: start the queue's current track, if any.
    match t.queue_index.or((!t.queue.is_empty()).then_some(0)) {
        Some(i) => start_queue_at(t, at, tracks, i).await,
        None => Err(Error::Conflict("nothing to resume".into())),
    }
}

fn seek(t: &mut Timeline, at: u64, position: f64) -> Result<(), Error> {
    let Some((track, _, paused)) = t.current(at) else {
        return Err(Error::Conflict("nothing is playing".into()));
    };
    let part = part_within(&track, position)?;
    if paused {
        if let Some(p) = &mut t.paused {
            p.at_part = part;
        }
        t.changed_at_part = at;
    } else {
        t.play(at, track, part);
    }
    Ok(())
}

async fn next(t: &mut Timeline, at: u64, tracks: &mut impl Tracks, rng: &mut impl Rng) -> Result<(), Error> {
    match t.next_index(false, rng) {
        Some(i) => start_queue_at(t, at, tracks, i).await,
        None => {
            t.queue_index = None;
            t.stop(at);
            Ok(())
        }
    }
}

async fn previous(t: &mut Timeline, at: u64, tracks: &mut impl Tracks) -> Result<(), Error> {
    let restart = t.current(at).filter(|(_, index, _)| index.saturating_mul(PART_MS) > RESTART_AFTER_MS);
    match (restart, t.previous_index()) {
        (Some((track, _, _)), _) => {
            t.play(at, track, 0);
            Ok(())
        }
        (None, Some(i)) => start_queue_at(t, at, tracks, i).await,
        (None, None) => Err(Error::Conflict("the queue is empty".into())),
    }
}

async fn queue(t: &mut Timeline, action: QueueAction, tracks: &mut impl Tracks) -> Result<(), Error> {
    let done = match action {
        QueueAction::Add(ids) => {
            tracks.check_known(&ids).await?;
            t.enqueue(&ids);
            true
        }
        QueueAction::Remove(index) => t.remove_from_queue(index),
        QueueAction::Move { from, to } => t.move_in_queue(from, to),
        QueueAction::Clear => {
            t.clear_queue();
            t.queue_folder = None;
            true
        }
    };
    if done {
        Ok(())
    } else {
        Err(Error::Invalid(format!("index: no such queue position (the queue has {} tracks)", t.queue.len())))
    }
}

/// Makes queue position `index` current and plays it from the start at `at`.
async fn start_queue_at(t: &mut Timeline, at: u64, tracks: &mut impl Tracks, index: usize) -> Result<(), Error> {
    let id = *t.queue.get(index).ok_or_else(|| Error::Invalid("index: no such queue position".into()))?;
    let track = tracks.track(id).await?;
    t.queue_index = Some(index);
    t.play(at, track, 0);
    Ok(())
}

/// The current track ends at grid part `end`: the next one from the queue starts
/// `crossfade_parts` earlier (never before `earliest`) and fades in over the room's
/// crossfade, or, at the queue's end, silence follows from `end`. Returns where.
pub(crate) async fn advance(
    t: &mut Timeline,
    end: u64,
    crossfade_parts: u64,
    earliest: u64,
    tracks: &mut impl Tracks,
    rng: &mut impl Rng,
) -> u64 {
    let at = end.saturating_sub(crossfade_parts).max(earliest);
    for _ in 0..=t.queue.len() {
        let Some(i) = t.next_index(true, rng) else { break };
        match start_queue_at(t, at, tracks, i).await {
            Ok(()) => {
                if t.repeat == Repeat::One {
                    // A track repeating itself follows on without a fade, and from where its
                    // last sample ends when the part before `at` is still to be published.
                    t.set_fade(at, 0);
                    if at > earliest {
                        t.continue_gapless(at);
                    }
                } else {
                    t.set_fade(at, t.crossfade_ms);
                }
                return at;
            }
            Err(e) => {
                t.error = Some(e.to_string());
                t.queue_index = Some(i);
                if t.repeat == Repeat::One {
                    break;
                }
            }
        }
    }
    let at = end.max(earliest);
    t.queue_index = None;
    t.stop(at);
    at
}

/// The track part that holds `position` seconds; `Invalid` past the track's end.
fn part_within(track: &TrackRef, position: f64) -> Result<u64, Error> {
    let part = (position * 1000.0 / PART_MS as f64).floor() as u64;
    let past_end = match track.parts {
        Some(n) => part >= n,
        None => track.duration_ms > 0 && position * 1000.0 >= track.duration_ms as f64,
    };
    if past_end {
        return Err(Error::Invalid(format!("position: {position} s is past the end of the track")));
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::seq::IndexedRandom;
    use rand::SeedableRng;

    use super::*;
    use crate::room::timeline::{Content, Source};

    /// An in-memory library: tracks 1..=n of `parts` parts each; `missing` ones have no file.
    struct Shelf {
        parts: HashMap<TrackId, Option<u64>>,
        missing: Vec<TrackId>,
        folders: HashMap<FolderId, Vec<TrackId>>,
        scenes: HashMap<SceneId, SceneSpec>,
    }

    impl Shelf {
        fn new(n: i64) -> Shelf {
            let ids = (1..=n).map(TrackId);
            Shelf {
                parts: ids.clone().map(|id| (id, Some(10 + id.0 as u64))).collect(),
                missing: Vec::new(),
                folders: HashMap::from([(FolderId(1), ids.collect()), (FolderId(2), Vec::new())]),
                scenes: HashMap::new(),
            }
        }
    }

    impl Tracks for Shelf {
        async fn track(&mut self, id: TrackId) -> Result<TrackRef, Error> {
            let parts = *self.parts.get(&id).ok_or(Error::NotFound("track"))?;
            if self.missing.contains(&id) {
                return Err(Error::Conflict(format!("the file of track {} is missing", id.0)));
            }
            Ok(TrackRef {
                id,
                fingerprint: format!("f{}", id.0),
                relpath: b"x".to_vec(),
                parts,
                // A track ends 1000 samples per id into its last part, as real ones do.
                samples: parts.map(|n| n * u64::from(segmenter::PART_SAMPLES) - 1000 * id.0 as u64),
                duration_ms: parts.unwrap_or(20) * PART_MS,
                loudness_lufs: None,
                gain_db: 0.0,
            })
        }

        async fn folder(&mut self, id: FolderId) -> Result<Vec<TrackId>, Error> {
            self.folders.get(&id).cloned().ok_or(Error::NotFound("folder"))
        }

        async fn samples(&mut self, track: &TrackRef) -> Result<u64, Error> {
            Ok(track.samples.unwrap_or(track.parts.unwrap_or(20) * u64::from(segmenter::PART_SAMPLES)))
        }

        async fn check_known(&mut self, ids: &[TrackId]) -> Result<(), Error> {
            match ids.iter().all(|id| self.parts.contains_key(id)) {
                true => Ok(()),
                false => Err(Error::NotFound("track")),
            }
        }

        async fn scene(&mut self, id: SceneId) -> Result<SceneSpec, Error> {
            self.scenes.get(&id).cloned().ok_or(Error::NotFound("scene"))
        }
    }

    /// Runs a future to completion on the current thread (the shelf never waits).
    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
    }

    fn playing(t: &Timeline, part: u64) -> Option<(TrackId, u64)> {
        match t.content_at(part) {
            Content::Track { track, index } => Some((track.id, index)),
            Content::Silence => None,
        }
    }

    #[test]
    fn play_a_folder_then_next_previous_and_stop() {
        let (mut shelf, mut rng) = (Shelf::new(3), StdRng::seed_from_u64(1));
        let mut t = Timeline::default();
        let folder = Command::Play(Play::Folder { folder_id: FolderId(1), shuffle: false });
        run(apply(&mut t, folder, 100, &mut shelf, &mut rng)).unwrap();
        assert_eq!(playing(&t, 100), Some((TrackId(1), 0)));
        run(apply(&mut t, Command::Next, 104, &mut shelf, &mut rng)).unwrap();
        assert_eq!((playing(&t, 104), t.queue_index), (Some((TrackId(2), 0)), Some(1)));
        assert_eq!(playing(&t, 103), Some((TrackId(1), 3)), "the past stays");
        // Early in a track, "previous" goes back a track; later it restarts the track.
        run(apply(&mut t, Command::Previous, 105, &mut shelf, &mut rng)).unwrap();
        assert_eq!(playing(&t, 105), Some((TrackId(1), 0)));
        run(apply(&mut t, Command::Previous, 120, &mut shelf, &mut rng)).unwrap();
        assert_eq!((playing(&t, 120), t.queue_index), (Some((TrackId(1), 0)), Some(0)));
        run(apply(&mut t, Command::Stop, 130, &mut shelf, &mut rng)).unwrap();
        assert_eq!(playing(&t, 130), None);
        assert!(matches!(run(apply(&mut t, Command::Pause, 131, &mut shelf, &mut rng)), Err(Error::Conflict(_))));
    }

    #[test]
    fn pause_seek_and_resume_continue_from_the_new_place() {
        let (mut shelf, mut rng) = (Shelf::new(1), StdRng::seed_from_u64(1));
        let mut t = Timeline::default();
        let play = Command::Play(Play::Track { track_id: TrackId(1), position: 1.1 });
        run(apply(&mut t, play, 10, &mut shelf, &mut rng)).unwrap();
        assert_eq!(playing(&t, 10), Some((TrackId(1), 2)), "1.1 s is in part 2");
        run(apply(&mut t, Command::Pause, 12, &mut shelf, &mut rng)).unwrap();
        run(apply(&mut t, Command::Seek(2.048), 13, &mut shelf, &mut rng)).unwrap();
        assert_eq!(playing(&t, 13), None, "still paused");
        run(apply(&mut t, Command::Resume, 20, &mut shelf, &mut rng)).unwrap();
        assert_eq!(playing(&t, 20), Some((TrackId(1), 4)));
        let past_end = run(apply(&mut t, Command::Seek(60.0), 21, &mut shelf, &mut rng));
        assert!(matches!(past_end, Err(Error::Invalid(m)) if m.starts_with("position:")));
    }

    #[test]
    fn a_repeated_track_comes_round_where_its_last_sample_ends() {
        let (mut shelf, mut rng) = (Shelf::new(2), StdRng::seed_from_u64(1));
        let mut t = Timeline::default();
        run(apply(&mut t, Command::Repeat(Repeat::One), 0, &mut shelf, &mut rng)).unwrap();
        let play = Command::Play(Play::Track { track_id: TrackId(2), position: 0.0 });
        run(apply(&mut t, play, 10, &mut shelf, &mut rng)).unwrap();
        // Track 2 is 12 parts long but for its last 2000 samples.
        let ps = u64::from(segmenter::PART_SAMPLES);
        let length = 12 * ps - 2000;
        let mut end = 10 * ps + length;
        for pass in 1..=30 {
            let track_end = t.last_track_end().unwrap();
            assert_eq!(track_end, end.div_ceil(ps), "pass {pass}");
            assert_eq!(run(advance(&mut t, track_end, 0, track_end - 2, &mut shelf, &mut rng)), track_end);
            let entry = t.last().unwrap();
            assert_eq!(track_end * ps - u64::from(entry.early_samples), end, "pass {pass} starts where the last ended");
            assert_eq!(entry.fade_ms, 0);
            end += length;
        }
        // When the part before the end is already published, the track comes round on a part.
        let track_end = t.last_track_end().unwrap();
        run(advance(&mut t, track_end, 0, track_end, &mut shelf, &mut rng));
        assert_eq!(t.last().unwrap().early_samples, 0);
        // Another track never continues one before it.
        let next = Command::Next;
        run(apply(&mut t, next, track_end + 3, &mut shelf, &mut rng)).unwrap();
        assert_eq!(t.last().unwrap().early_samples, 0);
    }

    fn scene(json: serde_json::Value) -> SceneSpec {
        let mut s: SceneSpec = serde_json::from_value(json).unwrap();
        s.normalize().unwrap();
        s
    }

    /// (track, gain) of the layers playing at `part`, and the layer ids.
    fn layers(t: &Timeline, part: u64) -> Vec<(i64, f64, u64)> {
        t.active_layers(part).map(|l| (l.track.id.0, l.gain(), l.id)).collect()
    }

    #[test]
    fn a_scene_switch_keeps_shared_layers_fades_the_rest_and_skips_what_is_missing() {
        let (mut shelf, mut rng) = (Shelf::new(8), StdRng::seed_from_u64(1));
        shelf.missing.push(TrackId(8));
        shelf.folders.insert(FolderId(3), vec![TrackId(8), TrackId(5)]);
        shelf.scenes.insert(
            SceneId(1),
            scene(serde_json::json!({"name": "Tavern", "music": {"folderId": 1, "repeat": "all"},
                "layers": [{"trackId": 6, "gain": 0.5}, {"trackId": 7, "gain": 0.3}],
                "pads": [{"trackId": 2}, {"folderId": 1, "key": "q", "gain": 0.4}], "crossfadeSeconds": 4})),
        );
        shelf.scenes.insert(
            SceneId(2),
            scene(serde_json::json!({"name": "Ambush", "music": {"folderId": 3},
                "layers": [{"trackId": 7, "gain": 0.8}, {"trackId": 4}, {"trackId": 8}, {"trackId": 99}]})),
        );
        let mut t = Timeline::default();
        let no_scene = run(apply(&mut t, Command::Pad(PadChoice::Index(0)), 5, &mut shelf, &mut rng));
        assert!(matches!(no_scene, Err(Error::Conflict(_))));

        run(apply(&mut t, Command::Scene(SceneId(1)), 10, &mut shelf, &mut rng)).unwrap();
        assert_eq!((playing(&t, 10), t.repeat, t.crossfade_ms), (Some((TrackId(1), 0)), Repeat::All, 4000));
        assert_eq!(layers(&t, 10), [(6, 0.5, 0), (7, 0.3, 1)]);
        assert_eq!(t.scene.as_ref().map(|s| (s.name.as_str(), s.skipped.len())), Some(("Tavern", 0)));
        // The same scene again changes nothing that plays.
        let entries = t.entries.len();
        run(apply(&mut t, Command::Scene(SceneId(1)), 14, &mut shelf, &mut rng)).unwrap();
        assert_eq!((t.entries.len(), layers(&t, 14)), (entries, vec![(6, 0.5, 0), (7, 0.3, 1)]));

        run(apply(&mut t, Command::Pad(PadChoice::Key("Q".into())), 15, &mut shelf, &mut rng)).unwrap();
        assert_eq!(t.oneshots.last().map(|o| (o.start_part, o.gain)), Some((15, 0.4)));
        let no_pad = run(apply(&mut t, Command::Pad(PadChoice::Index(2)), 15, &mut shelf, &mut rng));
        assert!(matches!(no_pad, Err(Error::Invalid(m)) if m.starts_with("index:")));

        run(apply(&mut t, Command::Scene(SceneId(2)), 20, &mut shelf, &mut rng)).unwrap();
        // The folder's first track is missing: its second plays, crossfading over 4 s.
        assert_eq!(playing(&t, 20), Some((TrackId(5), 0)));
        assert_eq!(t.entries.last().map(|e| (e.start_part, e.fade_ms)), Some((20, 4000)));
        // Track 7 keeps its layer and glides to its new gain; 6 fades out; 4 fades in.
        assert_eq!(layers(&t, 20), [(7, 0.8, 1), (4, 1.0, 2)]);
        assert!(t.layers.iter().any(|l| l.track.id == TrackId(6) && l.stop.is_some_and(|s| s.at_part == 20)));
        let skipped = &t.scene.as_ref().unwrap().skipped;
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].contains("track 8") && skipped[1].contains("track 99"), "{skipped:?}");
        let deleted = run(apply(&mut t, Command::Pad(PadChoice::Index(0)), 21, &mut shelf, &mut rng));
        assert!(matches!(deleted, Err(Error::Invalid(_))), "scene 2 has no pads");
        shelf.scenes.remove(&SceneId(2));
        let deleted = run(apply(&mut t, Command::Pad(PadChoice::Index(0)), 21, &mut shelf, &mut rng));
        assert!(matches!(deleted, Err(Error::Conflict(m)) if m.contains("deleted")));
        let unknown = run(apply(&mut t, Command::Scene(SceneId(2)), 22, &mut shelf, &mut rng));
        assert!(matches!(unknown, Err(Error::NotFound("scene"))));
    }

    #[test]
    fn a_missing_file_is_skipped_at_the_end_of_a_track() {
        let (mut shelf, mut rng) = (Shelf::new(3), StdRng::seed_from_u64(1));
        shelf.missing.push(TrackId(2));
        let mut t = Timeline::default();
        let folder = Command::Play(Play::Folder { folder_id: FolderId(1), shuffle: false });
        run(apply(&mut t, folder, 0, &mut shelf, &mut rng)).unwrap();
        run(advance(&mut t, 11, 0, 0, &mut shelf, &mut rng));
        assert_eq!((playing(&t, 11), t.queue_index), (Some((TrackId(3), 0)), Some(2)));
        assert!(t.error.as_deref().is_some_and(|e| e.contains("missing")));
    }

    #[test]
    fn queue_indices_are_absolute_and_checked() {
        let (mut shelf, mut rng) = (Shelf::new(3), StdRng::seed_from_u64(1));
        let mut t = Timeline::default();
        let add = Command::Queue(QueueAction::Add(vec![TrackId(3), TrackId(1), TrackId(2)]));
        run(apply(&mut t, add, 0, &mut shelf, &mut rng)).unwrap();
        run(apply(&mut t, Command::Queue(QueueAction::Remove(1)), 0, &mut shelf, &mut rng)).unwrap();
        assert_eq!(t.queue, [TrackId(3), TrackId(2)]);
        let bad = run(apply(&mut t, Command::Queue(QueueAction::Move { from: 0, to: 2 }), 0, &mut shelf, &mut rng));
        assert!(matches!(bad, Err(Error::Invalid(m)) if m.starts_with("index:")));
        let unknown = run(apply(&mut t, Command::Queue(QueueAction::Add(vec![TrackId(9)])), 0, &mut shelf, &mut rng));
        assert!(matches!(unknown, Err(Error::NotFound("track"))));
    }

    #[test]
    fn a_seeded_rng_replays_a_shuffle() {
        let shuffled = |seed| {
            let (mut shelf, mut rng) = (Shelf::new(40), StdRng::seed_from_u64(seed));
            let mut t = Timeline::default();
            let folder = Command::Play(Play::Folder { folder_id: FolderId(1), shuffle: true });
            run(apply(&mut t, folder, 0, &mut shelf, &mut rng)).unwrap();
            t.queue
        };
        assert_eq!(shuffled(7), shuffled(7));
        assert_ne!(shuffled(7), shuffled(8));
        assert_ne!(shuffled(7), (1..=40).map(TrackId).collect::<Vec<_>>());
    }

    /// A random command, with values that are often out of range.
    fn random_command(rng: &mut StdRng) -> Command {
        let index = |rng: &mut StdRng| *[0, 1, 2, 5, 40, usize::MAX].choose(rng).unwrap_or(&0);
        let seconds = |rng: &mut StdRng| *[0.0, 0.3, 5.0, 11.9, 1e9, f64::MAX].choose(rng).unwrap_or(&0.0);
        let track = |rng: &mut StdRng| TrackId(rng.random_range(-1..8));
        match rng.random_range(0..16) {
            0 => Command::Play(Play::Track { track_id: track(rng), position: seconds(rng) }),
            1 => Command::Play(Play::Folder { folder_id: FolderId(rng.random_range(0..4)), shuffle: rng.random() }),
            2 => Command::Pause,
            3 => Command::Resume,
            4 => Command::Seek(seconds(rng)),
            5 => Command::Stop,
            6 => Command::Next,
            7 => Command::Previous,
            8 => Command::Queue(QueueAction::Add((0..rng.random_range(0..4)).map(|_| track(rng)).collect())),
            9 => Command::Queue(QueueAction::Remove(index(rng))),
            10 => Command::Queue(QueueAction::Move { from: index(rng), to: index(rng) }),
            11 => Command::Queue(QueueAction::Clear),
            12 => Command::Repeat(*[Repeat::Off, Repeat::One, Repeat::All].choose(rng).unwrap_or(&Repeat::Off)),
            13 => Command::Shuffle(rng.random()),
            14 => Command::Volume(rng.random_range(0.0..=1.0)),
            15 => Command::Delay(*[None, Some(100), Some(800), Some(10_000)].choose(rng).unwrap_or(&None)),
            _ => Command::Next,
        }
    }

    /// A saved timeline spoiled in one of the ways a bad file or an old version could.
    fn corrupt(t: &mut Timeline, rng: &mut StdRng) {
        let big = |rng: &mut StdRng| *[0, 1, 7, u64::MAX / 2, u64::MAX].choose(rng).unwrap_or(&0);
        match rng.random_range(0..8) {
            0 => t.queue_index = Some(rng.random_range(0..usize::MAX)),
            1 => t.entries.reverse(),
            2 => t.entries.clear(),
            3 => {
                if let Some(e) = t.entries.last_mut() {
                    e.start_part = big(rng);
                    if let Source::Track { from_part, track } = &mut e.source {
                        *from_part = big(rng);
                        track.parts = Some(big(rng));
                    }
                }
            }
            4 => t.unshuffled = Some(vec![TrackId(99)]),
            5 => t.volume = f64::NAN,
            6 => {
                if let Some(p) = &mut t.paused {
                    p.at_part = big(rng);
                }
            }
            _ => t.changed_at_part = big(rng),
        }
    }

    /// No sequence of commands, however odd its values, panics; and the queue index always
    /// points into the queue. A spoiled saved state is either refused or survives the same.
    #[test]
    fn random_command_sequences_never_panic() {
        const SEQUENCES: u64 = 10_000;
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        for seed in 0..SEQUENCES {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut shelf = Shelf::new(6);
            shelf.parts.insert(TrackId(6), None);
            shelf.missing.push(TrackId(5));
            let mut t = Timeline::default();
            let mut at = rng.random_range(0..1_000_000);
            for step in 0..24 {
                if step == 12 && seed % 2 == 0 {
                    corrupt(&mut t, &mut rng);
                    if t.validate().is_err() {
                        t = Timeline::default();
                    }
                }
                at += rng.random_range(0..40);
                let command = random_command(&mut rng);
                let before = t.clone();
                let result = runtime.block_on(apply(&mut t, command.clone(), at, &mut shelf, &mut rng));
                if result.is_err() {
                    t = before;
                }
                if rng.random_bool(0.3) {
                    runtime.block_on(advance(&mut t, at + 1, 0, 0, &mut shelf, &mut rng));
                }
                let _ = (t.content_at(at), t.current(at + 5), t.last_track_end());
                t.forget_before(at.saturating_sub(100));
                if let Some(i) = t.queue_index {
                    assert!(
                        i < t.queue.len(),
                        "seed {seed} step {step}: {command:?} left index {i} of {}",
                        t.queue.len()
                    );
                }
                assert!(t.validate().is_ok(), "seed {seed} step {step}: {command:?} left {:?}", t.validate());
            }
        }
    }
}
