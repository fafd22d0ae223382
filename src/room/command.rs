//! GM commands and how they are read from a name and a JSON body.
//!
//! REST (`POST /api/session/<name>`) and the control socket (`{"type":"command",
//! "command":<name>, …}`) both go through [`parse_command`]: an unknown name is
//! [`Error::UnknownCommand`]; anything else wrong with the body is [`Error::Invalid`] and
//! names the field. Values are checked here, so the actor only sees sensible numbers.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::ambience::{DEFAULT_DUCK_DB, DEFAULT_LAYER_FADE_MS, DUCK_RAMP_MS, MAX_LAYER_FADE_MS};
use super::timeline::{Repeat, MAX_CROSSFADE_MS, TARGET_LUFS};
use super::Error;
use crate::ids::{FolderId, SceneId, TrackId};

/// Every command name, as sent.
pub const COMMAND_NAMES: &[&str] = &[
    "play", "pause", "resume", "seek", "stop", "next", "previous", "queue", "repeat", "shuffle", "volume", "delay",
    "settings", "layer", "oneshot", "duck", "scene", "pad", "tick",
];

/// The playback delay the GM may pin, ms.
pub const PINNED_DELAY_MS: std::ops::RangeInclusive<u64> = 100..=10_000;

/// A GM command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Play(Play),
    Pause,
    Resume,
    /// Jump to this many seconds into the current track (finite, ≥ 0).
    Seek(f64),
    Stop,
    Next,
    Previous,
    Queue(QueueAction),
    Repeat(Repeat),
    Shuffle(bool),
    /// Master volume, 0..=1.
    Volume(f64),
    /// Pin the playback delay D at this many ms, or let it adapt again (`None`).
    Delay(Option<u64>),
    /// Room settings; a field left out keeps its value.
    Settings(Settings),
    /// Ambience layers under the music.
    Layer(LayerAction),
    /// A track (or one picked at random from a folder) played once on top, gain 0..=1.
    OneShot {
        source: OneShotSource,
        gain: f64,
    },
    /// Lower music and ambience by this many dB (−60..=0), or release (`None`).
    Duck(Option<f64>),
    /// Switch to a scene: its music, its layers and its pads, all from one part.
    Scene(SceneId),
    /// Fire a pad of the scene playing.
    Pad(PadChoice),
    /// The calibration tick: a click on every whole second, on top of everything, on or off.
    Tick(bool),
}

/// Which pad of the scene playing.
#[derive(Debug, Clone, PartialEq)]
pub enum PadChoice {
    /// Its position among the scene's pads, from 0.
    Index(usize),
    /// The key it is on (`1`, `q`, …).
    Key(String),
}

/// A change to the ambience layers; fades are in ms (0..=30 000).
#[derive(Debug, Clone, PartialEq)]
pub enum LayerAction {
    Add { track_id: TrackId, gain: f64, fade_ms: u32 },
    Gain { layer_id: u64, gain: f64, fade_ms: u32 },
    Remove { layer_id: u64, fade_ms: u32 },
    Clear { fade_ms: u32 },
}

/// What a one-shot plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OneShotSource {
    Track(TrackId),
    /// One of the folder's tracks, picked at random (variations of one sound).
    Folder(FolderId),
}

/// The room's sound settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// Track changes crossfade over this long, ms (0..=12 000; 0 is a cut).
    pub crossfade_ms: Option<u32>,
    /// Match tracks' loudness (from the next track put on the stage on).
    pub normalize: Option<bool>,
    /// The loudness tracks are matched to, LUFS (−30..=−10).
    pub target_lufs: Option<f64>,
}

/// What `play` plays.
#[derive(Debug, Clone, PartialEq)]
pub enum Play {
    /// One track, from `position` seconds (finite, ≥ 0).
    Track { track_id: TrackId, position: f64 },
    /// A folder: its tracks become the queue, optionally shuffled.
    Folder { folder_id: FolderId, shuffle: bool },
}

/// A change to the queue. Indices are absolute positions in the whole queue, the same
/// numbers the session state shows (`queueStart + i` for the i-th listed item).
#[derive(Debug, Clone, PartialEq)]
pub enum QueueAction {
    Add(Vec<TrackId>),
    Remove(usize),
    /// `to` is the item's index after the move.
    Move {
        from: usize,
        to: usize,
    },
    Clear,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoFields {}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LayerAddBody {
    track_id: TrackId,
    gain: Option<f64>,
    fade_seconds: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LayerGainBody {
    layer_id: u64,
    gain: f64,
    fade_seconds: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LayerRemoveBody {
    layer_id: u64,
    fade_seconds: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LayerClearBody {
    fade_seconds: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OneShotBody {
    track_id: Option<TrackId>,
    folder_id: Option<FolderId>,
    gain: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SceneBody {
    scene_id: SceneId,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PadBody {
    index: Option<usize>,
    key: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TickBody {
    on: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DuckBody {
    on: bool,
    db: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlayBody {
    track_id: Option<TrackId>,
    folder_id: Option<FolderId>,
    position: Option<f64>,
    shuffle: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SeekBody {
    position: f64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RepeatBody {
    mode: Repeat,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ShuffleBody {
    on: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VolumeBody {
    volume: f64,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    crossfade_seconds: Option<f64>,
    normalize: Option<bool>,
    target_lufs: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DelayBody {
    ms: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddBody {
    track_ids: Vec<TrackId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    index: usize,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    from: usize,
    to: usize,
}

/// One command as the API document shows it: `POST /api/session/<name>` with this body.
pub struct CommandDoc {
    pub name: &'static str,
    pub summary: &'static str,
    /// The JSON body's schema; `$ref`s point into `schemas`.
    pub body: RefOr<Schema>,
    /// The body may be left out (the command takes no fields, or none is required).
    pub body_optional: bool,
}

/// Every command of [`COMMAND_NAMES`] with its body's schema, built from the same body types
/// the parser reads; the schemas those bodies refer to are added to `schemas`.
pub fn command_docs(schemas: &mut Vec<(String, RefOr<Schema>)>) -> Vec<CommandDoc> {
    COMMAND_NAMES.iter().filter_map(|name| command_doc(name, schemas)).collect()
}

fn command_doc(name: &'static str, schemas: &mut Vec<(String, RefOr<Schema>)>) -> Option<CommandDoc> {
    let (summary, body, body_optional) = match name {
        "play" => ("Play a track (from `position` s) or a folder as the queue", body::<PlayBody>(schemas), false),
        "pause" => ("Pause (a 250 ms fade)", body::<NoFields>(schemas), true),
        "resume" => ("Resume (a 250 ms fade)", body::<NoFields>(schemas), true),
        "seek" => ("Jump to `position` s into the track", body::<SeekBody>(schemas), false),
        "stop" => ("Stop: silence until the next play", body::<NoFields>(schemas), true),
        "next" => ("The next track of the queue", body::<NoFields>(schemas), true),
        "previous" => ("The previous track of the queue", body::<NoFields>(schemas), true),
        "queue" => (
            "Change the queue: add, remove, move (absolute positions) or clear",
            one_of_actions(&[
                ("add", body::<AddBody>(schemas)),
                ("remove", body::<RemoveBody>(schemas)),
                ("move", body::<MoveBody>(schemas)),
                ("clear", body::<NoFields>(schemas)),
            ]),
            false,
        ),
        "repeat" => ("Repeat mode: off, one, all", body::<RepeatBody>(schemas), false),
        "shuffle" => ("Shuffle the queue, or not", body::<ShuffleBody>(schemas), false),
        "volume" => ("Master volume 0–1, applied in the stream", body::<VolumeBody>(schemas), false),
        "delay" => {
            ("Pin the playback delay D (100–10000 ms), or `null` to let it adapt", body::<DelayBody>(schemas), false)
        }
        "settings" => ("Crossfade length, loudness matching and its target", body::<SettingsBody>(schemas), false),
        "layer" => (
            "Ambience layers: add, change a gain, remove (with fades) or clear",
            one_of_actions(&[
                ("add", body::<LayerAddBody>(schemas)),
                ("gain", body::<LayerGainBody>(schemas)),
                ("remove", body::<LayerRemoveBody>(schemas)),
                ("clear", body::<LayerClearBody>(schemas)),
            ]),
            false,
        ),
        "oneshot" => ("Play a track once on top, or one of a folder's at random", body::<OneShotBody>(schemas), false),
        "duck" => ("Lower music and ambience by `db` (default −12) while on", body::<DuckBody>(schemas), false),
        "scene" => ("Switch to a scene as one change", body::<SceneBody>(schemas), false),
        "pad" => ("Fire a pad of the scene playing, by `index` or `key`", body::<PadBody>(schemas), false),
        "tick" => (
            "The calibration tick: a click on every whole second for every listener, so each can set its output delay",
            body::<TickBody>(schemas),
            false,
        ),
        _ => return None,
    };
    Some(CommandDoc { name, summary, body, body_optional })
}

/// `T`'s schema, with the schemas it refers to added to `schemas`.
fn body<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    T::schemas(schemas);
    T::schema()
}

/// One of several bodies, each with a required `action` naming it.
fn one_of_actions(actions: &[(&str, RefOr<Schema>)]) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new();
    for (action, body) in actions {
        let mut object = match body {
            RefOr::T(Schema::Object(object)) => object.clone(),
            _ => Object::new(),
        };
        let name = ObjectBuilder::new().schema_type(Type::String).enum_values(Some([*action]));
        object.properties.insert("action".into(), name.into());
        object.required.insert(0, "action".into());
        one_of = one_of.item(Schema::Object(object));
    }
    one_of.into()
}

/// Reads command `name` with its JSON `body` (empty means `{}`).
pub fn parse_command(name: &str, body: &[u8]) -> Result<Command, Error> {
    if !COMMAND_NAMES.contains(&name) {
        return Err(Error::UnknownCommand(name.chars().take(40).collect()));
    }
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("malformed JSON: {e}")))?
    };
    let Value::Object(fields) = value else {
        return Err(Error::Invalid("the body must be a JSON object".into()));
    };
    command_from_fields(name, fields)
}

/// Reads command `name` from an object's fields (the control socket's message minus its envelope).
pub fn command_from_fields(name: &str, mut fields: Map<String, Value>) -> Result<Command, Error> {
    Ok(match name {
        "play" => Command::Play(play(fields_as(fields)?)?),
        "pause" => fields_as::<NoFields>(fields).map(|_| Command::Pause)?,
        "resume" => fields_as::<NoFields>(fields).map(|_| Command::Resume)?,
        "stop" => fields_as::<NoFields>(fields).map(|_| Command::Stop)?,
        "next" => fields_as::<NoFields>(fields).map(|_| Command::Next)?,
        "previous" => fields_as::<NoFields>(fields).map(|_| Command::Previous)?,
        "seek" => Command::Seek(seconds("position", fields_as::<SeekBody>(fields)?.position)?),
        "repeat" => Command::Repeat(fields_as::<RepeatBody>(fields)?.mode),
        "shuffle" => Command::Shuffle(fields_as::<ShuffleBody>(fields)?.on),
        "volume" => {
            let volume = fields_as::<VolumeBody>(fields)?.volume;
            if !(0.0..=1.0).contains(&volume) {
                return Err(Error::Invalid(format!("volume: {volume} is not between 0 and 1")));
            }
            Command::Volume(volume)
        }
        "delay" => {
            let ms = fields_as::<DelayBody>(fields)?.ms;
            if let Some(ms) = ms.filter(|ms| !PINNED_DELAY_MS.contains(ms)) {
                return Err(Error::Invalid(format!("ms: {ms} is not between 100 and 10000")));
            }
            Command::Delay(ms)
        }
        "settings" => {
            let SettingsBody { crossfade_seconds, normalize, target_lufs } = fields_as(fields)?;
            if let Some(t) = target_lufs.filter(|t| !TARGET_LUFS.contains(t)) {
                return Err(Error::Invalid(format!("targetLufs: {t} is not between -30 and -10")));
            }
            let max_s = f64::from(MAX_CROSSFADE_MS) / 1000.0;
            let crossfade_ms = match crossfade_seconds {
                Some(s) if (0.0..=max_s).contains(&s) => Some((s * 1000.0).round() as u32),
                Some(s) => return Err(Error::Invalid(format!("crossfadeSeconds: {s} is not between 0 and {max_s}"))),
                None => None,
            };
            Command::Settings(Settings { crossfade_ms, normalize, target_lufs })
        }
        "layer" => Command::Layer(layer_action(&mut fields)?),
        "oneshot" => {
            let OneShotBody { track_id, folder_id, gain } = fields_as(fields)?;
            let source = match (track_id, folder_id) {
                (Some(id), None) => OneShotSource::Track(id),
                (None, Some(id)) => OneShotSource::Folder(id),
                _ => return Err(Error::Invalid("trackId or folderId: give exactly one".into())),
            };
            Command::OneShot { source, gain: gain_in_range(gain.unwrap_or(1.0))? }
        }
        "duck" => {
            let DuckBody { on, db } = fields_as(fields)?;
            let db = db.unwrap_or(DEFAULT_DUCK_DB);
            if !(-60.0..=0.0).contains(&db) {
                return Err(Error::Invalid(format!("db: {db} is not between -60 and 0")));
            }
            Command::Duck(on.then_some(db))
        }
        "scene" => Command::Scene(fields_as::<SceneBody>(fields)?.scene_id),
        "tick" => Command::Tick(fields_as::<TickBody>(fields)?.on),
        "pad" => match fields_as::<PadBody>(fields)? {
            PadBody { index: Some(i), key: None } => Command::Pad(PadChoice::Index(i)),
            PadBody { index: None, key: Some(k) } => Command::Pad(PadChoice::Key(k.chars().take(8).collect())),
            _ => return Err(Error::Invalid("index or key: give exactly one".into())),
        },
        "queue" => {
            let action = match fields.remove("action") {
                Some(Value::String(a)) => a,
                Some(other) => return Err(Error::Invalid(format!("action: expected a string, got {other}"))),
                None => return Err(Error::Invalid("action: missing (add, remove, move or clear)".into())),
            };
            Command::Queue(match action.as_str() {
                "add" => QueueAction::Add(fields_as::<AddBody>(fields)?.track_ids),
                "remove" => QueueAction::Remove(fields_as::<RemoveBody>(fields)?.index),
                "move" => {
                    let MoveBody { from, to } = fields_as(fields)?;
                    QueueAction::Move { from, to }
                }
                "clear" => fields_as::<NoFields>(fields).map(|_| QueueAction::Clear)?,
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(Error::Invalid(format!(
                        "action: unknown action {shown:?}, expected add, remove, move or clear"
                    )));
                }
            })
        }
        other => return Err(Error::UnknownCommand(other.chars().take(40).collect())),
    })
}

fn layer_action(fields: &mut Map<String, Value>) -> Result<LayerAction, Error> {
    let action = match fields.remove("action") {
        Some(Value::String(a)) => a,
        Some(other) => return Err(Error::Invalid(format!("action: expected a string, got {other}"))),
        None => return Err(Error::Invalid("action: missing (add, gain, remove or clear)".into())),
    };
    let fields = std::mem::take(fields);
    Ok(match action.as_str() {
        "add" => {
            let LayerAddBody { track_id, gain, fade_seconds } = fields_as(fields)?;
            LayerAction::Add { track_id, gain: gain_in_range(gain.unwrap_or(1.0))?, fade_ms: fade_ms(fade_seconds)? }
        }
        "gain" => {
            let LayerGainBody { layer_id, gain, fade_seconds } = fields_as(fields)?;
            let fade_ms = match fade_seconds {
                Some(_) => fade_ms(fade_seconds)?,
                None => DUCK_RAMP_MS,
            };
            LayerAction::Gain { layer_id, gain: gain_in_range(gain)?, fade_ms }
        }
        "remove" => {
            let LayerRemoveBody { layer_id, fade_seconds } = fields_as(fields)?;
            LayerAction::Remove { layer_id, fade_ms: fade_ms(fade_seconds)? }
        }
        "clear" => LayerAction::Clear { fade_ms: fade_ms(fields_as::<LayerClearBody>(fields)?.fade_seconds)? },
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(Error::Invalid(format!(
                "action: unknown action {shown:?}, expected add, gain, remove or clear"
            )));
        }
    })
}

/// A gain, 0..=1.
fn gain_in_range(gain: f64) -> Result<f64, Error> {
    if (0.0..=1.0).contains(&gain) {
        Ok(gain)
    } else {
        Err(Error::Invalid(format!("gain: {gain} is not between 0 and 1")))
    }
}

/// `fadeSeconds` (0..=30, the layer default when left out) in ms.
fn fade_ms(seconds: Option<f64>) -> Result<u32, Error> {
    let max_s = f64::from(MAX_LAYER_FADE_MS) / 1000.0;
    match seconds {
        None => Ok(DEFAULT_LAYER_FADE_MS),
        Some(s) if (0.0..=max_s).contains(&s) => Ok((s * 1000.0).round() as u32),
        Some(s) => Err(Error::Invalid(format!("fadeSeconds: {s} is not between 0 and {max_s}"))),
    }
}

fn play(body: PlayBody) -> Result<Play, Error> {
    match body {
        PlayBody { track_id: Some(track_id), folder_id: None, position, shuffle: None } => {
            Ok(Play::Track { track_id, position: seconds("position", position.unwrap_or(0.0))? })
        }
        PlayBody { track_id: None, folder_id: Some(folder_id), position: None, shuffle } => {
            Ok(Play::Folder { folder_id, shuffle: shuffle.unwrap_or(false) })
        }
        _ => Err(Error::Invalid("play takes {trackId, position?} or {folderId, shuffle?}".into())),
    }
}

/// A number of seconds into a track: finite and not negative.
fn seconds(field: &str, value: f64) -> Result<f64, Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::Invalid(format!("{field}: {value} is not a number of seconds ≥ 0")))
    }
}

/// Deserializes `fields` as `T`; an error names the field it is about.
fn fields_as<T: DeserializeOwned>(fields: Map<String, Value>) -> Result<T, Error> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            Error::Invalid(e.into_inner().to_string())
        } else {
            Error::Invalid(format!("{path}: {}", e.into_inner()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(name: &str, body: &str) -> String {
        match parse_command(name, body.as_bytes()) {
            Err(Error::Invalid(message)) => message,
            other => panic!("{name} {body}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn commands_parse_from_name_and_body() {
        assert_eq!(parse_command("pause", b"").unwrap(), Command::Pause);
        assert_eq!(parse_command("pause", b" {} ").unwrap(), Command::Pause);
        assert_eq!(
            parse_command("play", br#"{"trackId": 4, "position": 12.5}"#).unwrap(),
            Command::Play(Play::Track { track_id: TrackId(4), position: 12.5 })
        );
        assert_eq!(
            parse_command("play", br#"{"folderId": 2, "shuffle": true}"#).unwrap(),
            Command::Play(Play::Folder { folder_id: FolderId(2), shuffle: true })
        );
        assert_eq!(
            parse_command("queue", br#"{"action": "move", "from": 1, "to": 0}"#).unwrap(),
            Command::Queue(QueueAction::Move { from: 1, to: 0 })
        );
        assert_eq!(parse_command("queue", br#"{"action": "clear"}"#).unwrap(), Command::Queue(QueueAction::Clear));
        assert_eq!(parse_command("repeat", br#"{"mode": "all"}"#).unwrap(), Command::Repeat(Repeat::All));
        assert_eq!(parse_command("volume", br#"{"volume": 0.25}"#).unwrap(), Command::Volume(0.25));
        assert_eq!(parse_command("delay", br#"{"ms": 900}"#).unwrap(), Command::Delay(Some(900)));
        assert_eq!(parse_command("delay", br#"{"ms": null}"#).unwrap(), Command::Delay(None));
        assert_eq!(
            parse_command("settings", br#"{"crossfadeSeconds": 2.5}"#).unwrap(),
            Command::Settings(Settings { crossfade_ms: Some(2500), normalize: None, target_lufs: None })
        );
        assert_eq!(
            parse_command("layer", br#"{"action": "add", "trackId": 3, "gain": 0.5}"#).unwrap(),
            Command::Layer(LayerAction::Add { track_id: TrackId(3), gain: 0.5, fade_ms: DEFAULT_LAYER_FADE_MS })
        );
        assert_eq!(
            parse_command("layer", br#"{"action": "remove", "layerId": 2, "fadeSeconds": 0}"#).unwrap(),
            Command::Layer(LayerAction::Remove { layer_id: 2, fade_ms: 0 })
        );
        assert_eq!(
            parse_command("oneshot", br#"{"folderId": 7}"#).unwrap(),
            Command::OneShot { source: OneShotSource::Folder(FolderId(7)), gain: 1.0 }
        );
        assert_eq!(parse_command("duck", br#"{"on": true}"#).unwrap(), Command::Duck(Some(DEFAULT_DUCK_DB)));
        assert_eq!(parse_command("duck", br#"{"on": false, "db": -6}"#).unwrap(), Command::Duck(None));
        assert_eq!(parse_command("scene", br#"{"sceneId": 4}"#).unwrap(), Command::Scene(SceneId(4)));
        assert_eq!(parse_command("pad", br#"{"index": 0}"#).unwrap(), Command::Pad(PadChoice::Index(0)));
        assert_eq!(parse_command("pad", br#"{"key": "q"}"#).unwrap(), Command::Pad(PadChoice::Key("q".into())));
    }

    #[test]
    fn only_an_unknown_name_is_an_unknown_command() {
        assert!(matches!(parse_command("dance", b"{}"), Err(Error::UnknownCommand(n)) if n == "dance"));
        assert!(matches!(parse_command("Pause", b"{}"), Err(Error::UnknownCommand(_))));
    }

    #[test]
    fn bad_values_are_invalid_and_name_their_field() {
        assert!(invalid("repeat", r#"{"mode": "x"}"#).starts_with("mode: unknown variant `x`"));
        assert!(invalid("queue", r#"{"action": "shuffle"}"#).starts_with("action: unknown action \"shuffle\""));
        assert!(invalid("queue", r#"{"action": 3}"#).starts_with("action:"));
        assert!(invalid("queue", r#"{"index": 3}"#).starts_with("action: missing"));
        assert!(invalid("queue", r#"{"action": "remove", "index": -1}"#).starts_with("index:"));
        assert!(invalid("queue", r#"{"action": "move", "from": 1}"#).contains("`to`"));
        assert!(invalid("queue", r#"{"action": "add", "trackIds": ["a"]}"#).starts_with("trackIds[0]:"));
        assert!(invalid("seek", "{}").contains("`position`"));
        assert!(invalid("seek", r#"{"position": -1}"#).starts_with("position:"));
        assert!(invalid("seek", r#"{"position": "ten"}"#).starts_with("position:"));
        assert!(invalid("volume", r#"{"volume": 1.5}"#).starts_with("volume:"));
        assert!(invalid("shuffle", r#"{"on": "yes"}"#).starts_with("on:"));
        assert!(invalid("delay", r#"{"ms": 20}"#).starts_with("ms:"));
        assert!(invalid("delay", r#"{"ms": -1}"#).starts_with("ms:"));
        assert!(invalid("pause", r#"{"x": 1}"#).contains("`x`"));
        assert!(invalid("play", r#"{"trackId": 1, "folderId": 2}"#).starts_with("play takes"));
        assert!(invalid("play", r#"{"trackId": 1, "position": 1e400}"#).contains("JSON"));
        assert!(invalid("pause", "[1]").contains("JSON object"));
        assert!(invalid("settings", r#"{"crossfadeSeconds": 13}"#).starts_with("crossfadeSeconds:"));
        assert!(invalid("settings", r#"{"targetLufs": -5}"#).starts_with("targetLufs:"));
        assert!(invalid("settings", r#"{"normalize": "on"}"#).starts_with("normalize:"));
        assert!(invalid("layer", r#"{"action": "add", "trackId": 1, "gain": 2}"#).starts_with("gain:"));
        assert!(invalid("layer", r#"{"action": "add", "trackId": 1, "fadeSeconds": -1}"#).starts_with("fadeSeconds:"));
        assert!(invalid("layer", r#"{"action": "mute"}"#).starts_with("action: unknown action"));
        assert!(invalid("layer", r#"{"action": "gain", "gain": 0.5}"#).contains("`layerId`"));
        assert!(invalid("oneshot", r#"{"trackId": 1, "folderId": 2}"#).starts_with("trackId or folderId"));
        assert!(invalid("oneshot", "{}").starts_with("trackId or folderId"));
        assert!(invalid("duck", r#"{"on": true, "db": 3}"#).starts_with("db:"));
        assert_eq!(parse_command("tick", br#"{"on": true}"#).unwrap(), Command::Tick(true));
        assert!(invalid("tick", r#"{"on": 1}"#).contains("on"));
        assert!(invalid("pause", "{").starts_with("malformed JSON"));
        assert!(invalid("scene", "{}").contains("`sceneId`"));
        assert!(invalid("scene", r#"{"sceneId": "tavern"}"#).starts_with("sceneId:"));
        assert!(invalid("pad", r#"{"index": 1, "key": "1"}"#).starts_with("index or key"));
        assert!(invalid("pad", r#"{"index": -1}"#).starts_with("index:"));
    }
}
