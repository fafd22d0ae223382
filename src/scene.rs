//! Scenes: the moods a GM prepares before a session (music, ambience layers, effect pads)
//! and switches between at the table with one command. A scene refers to tracks and folders
//! by id; one that is gone is shown as missing and skipped, never an error that blocks the
//! scene. Scenes are kept in SQLite and shared between servers as an export file, which
//! carries each track's path and each folder's name so that an import finds them again.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ids::{FolderId, SceneId, TrackId};
use crate::room::ambience::MAX_LAYERS;
use crate::room::timeline::{Repeat, MAX_CROSSFADE_MS};

/// Scenes a server keeps.
pub const MAX_SCENES: usize = 500;
/// Pads one scene holds.
pub const MAX_PADS: usize = 24;
/// The longest scene name, characters.
pub const MAX_NAME_CHARS: usize = 80;
/// The longest pad label, characters.
pub const MAX_LABEL_CHARS: usize = 40;
/// Keys a pad may have: one character each, a digit or a letter that the dashboard does not
/// use for the transport (D ducks, N and P change tracks). Pads left without one get the next free digit.
pub const PAD_KEYS: &str = "1234567890abcefghijklmoqrstuvwxyz";
/// Digits given to pads that name no key, in order.
const DEFAULT_PAD_KEYS: &str = "1234567890";
/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "bardcast-scenes";
/// The export file's version.
pub const EXPORT_VERSION: u32 = 1;

/// What a scene plays, as the GM writes it and as it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SceneSpec {
    /// 1 to 80 characters ([`MAX_NAME_CHARS`]).
    pub name: String,
    /// The music deck; left out (null), the music plays on as it is when the scene starts.
    #[serde(default)]
    pub music: Option<SceneMusic>,
    /// Ambience loops, at most 8 ([`MAX_LAYERS`]), each track once.
    #[serde(default)]
    pub layers: Vec<SceneLayer>,
    /// Effect pads, at most 24 ([`MAX_PADS`]).
    #[serde(default)]
    pub pads: Vec<Pad>,
    /// Track changes crossfade over this many seconds (0..=12) once the scene starts; left
    /// out, the room's setting stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossfade_seconds: Option<f64>,
}

/// A scene's music: a folder (its tracks become the queue) or one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SceneMusic {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<FolderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<TrackId>,
    #[serde(default)]
    pub shuffle: bool,
    #[serde(default)]
    pub repeat: Repeat,
}

/// An ambience loop of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SceneLayer {
    pub track_id: TrackId,
    /// 0..=1, linear.
    #[serde(default = "full")]
    pub gain: f64,
}

/// An effect pad: a track played once, or one picked at random from a folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pad {
    /// What the button says; the track's or folder's name when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<TrackId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<FolderId>,
    /// 0..=1, linear.
    #[serde(default = "full")]
    pub gain: f64,
    /// The keyboard key that fires it: a digit or a letter other than d, n and p ([`PAD_KEYS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn full() -> f64 {
    1.0
}

/// A saved scene with the tracks and folders it refers to, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scene {
    pub id: SceneId,
    /// Its place in the GM's list (0 first).
    pub position: u32,
    #[serde(flatten)]
    pub spec: SceneSpec,
    /// Every track it refers to; a missing one is skipped when the scene plays.
    pub tracks: Vec<TrackRefInfo>,
    /// Every folder it refers to.
    pub folders: Vec<FolderRefInfo>,
}

/// A track a scene refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackRefInfo {
    pub id: TrackId,
    /// Empty when the library has no such track.
    #[serde(default)]
    pub title: String,
    /// Path relative to the music folder; how an import finds the track on another server.
    #[serde(default)]
    pub path: String,
    /// Unknown to the library, or its file is gone.
    #[serde(default)]
    pub missing: bool,
}

/// A folder a scene refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderRefInfo {
    pub id: FolderId,
    /// Empty when the library has no such folder.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub missing: bool,
}

/// A file of scenes to share: `GET /api/scenes/export`, `POST /api/scenes/import`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SceneExport {
    /// Always `bardcast-scenes` ([`EXPORT_FORMAT`]).
    pub format: String,
    /// 1 ([`EXPORT_VERSION`]).
    pub version: u32,
    pub scenes: Vec<SceneSpec>,
    /// The tracks the scenes refer to, with their paths.
    #[serde(default)]
    pub tracks: Vec<TrackRefInfo>,
    /// The folders the scenes refer to, with their names.
    #[serde(default)]
    pub folders: Vec<FolderRefInfo>,
}

impl SceneSpec {
    /// Checks every value and fills in what may be left out (trimmed names, pad keys). The
    /// message names the field, as `layers[2].gain: …`.
    pub fn normalize(&mut self) -> Result<(), String> {
        self.name = self.name.trim().to_owned();
        check_text("name", &self.name, MAX_NAME_CHARS)?;
        if let Some(m) = &self.music {
            if m.folder_id.is_some() == m.track_id.is_some() {
                return Err("music: give exactly one of folderId and trackId".into());
            }
            if m.track_id.is_some() && m.shuffle {
                return Err("music.shuffle: one track cannot be shuffled".into());
            }
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(format!(
                "layers: at most {MAX_LAYERS} layers play at once, this scene has {}",
                self.layers.len()
            ));
        }
        let mut seen = HashSet::new();
        for (i, layer) in self.layers.iter().enumerate() {
            check_gain(&format!("layers[{i}].gain"), layer.gain)?;
            if !seen.insert(layer.track_id) {
                return Err(format!("layers[{i}].trackId: track {} is already a layer of this scene", layer.track_id));
            }
        }
        if self.pads.len() > MAX_PADS {
            return Err(format!("pads: a scene has at most {MAX_PADS} pads, this one has {}", self.pads.len()));
        }
        let mut keys = HashSet::new();
        for (i, pad) in self.pads.iter_mut().enumerate() {
            if pad.track_id.is_some() == pad.folder_id.is_some() {
                return Err(format!("pads[{i}]: give exactly one of trackId and folderId"));
            }
            check_gain(&format!("pads[{i}].gain"), pad.gain)?;
            if let Some(label) = &mut pad.label {
                *label = label.trim().to_owned();
                check_text(&format!("pads[{i}].label"), label, MAX_LABEL_CHARS)?;
            }
            if let Some(key) = &mut pad.key {
                *key = key.to_lowercase();
                if key.chars().count() != 1 || !PAD_KEYS.contains(key.as_str()) {
                    return Err(format!("pads[{i}].key: {key:?} is not a digit or a letter other than d, n and p"));
                }
                if !keys.insert(key.clone()) {
                    return Err(format!("pads[{i}].key: {key:?} already fires another pad"));
                }
            }
        }
        let mut free = DEFAULT_PAD_KEYS.chars().map(String::from).filter(|k| !keys.contains(k));
        for pad in self.pads.iter_mut().filter(|p| p.key.is_none()) {
            pad.key = free.next();
        }
        if let Some(s) = self.crossfade_seconds {
            let max_s = f64::from(MAX_CROSSFADE_MS) / 1000.0;
            if !(0.0..=max_s).contains(&s) {
                return Err(format!("crossfadeSeconds: {s} is not between 0 and {max_s}"));
            }
        }
        Ok(())
    }

    /// Every track the scene refers to, each once, in order.
    pub fn track_ids(&self) -> Vec<TrackId> {
        let music = self.music.as_ref().and_then(|m| m.track_id);
        let all = music
            .into_iter()
            .chain(self.layers.iter().map(|l| l.track_id))
            .chain(self.pads.iter().filter_map(|p| p.track_id));
        let mut seen = HashSet::new();
        all.filter(|id| seen.insert(*id)).collect()
    }

    /// Every folder the scene refers to, each once, in order.
    pub fn folder_ids(&self) -> Vec<FolderId> {
        let music = self.music.as_ref().and_then(|m| m.folder_id);
        let mut seen = HashSet::new();
        music.into_iter().chain(self.pads.iter().filter_map(|p| p.folder_id)).filter(|id| seen.insert(*id)).collect()
    }

    /// Puts this server's ids in place of the ids an export file used.
    pub fn map_ids(&mut self, tracks: &HashMap<TrackId, TrackId>, folders: &HashMap<FolderId, FolderId>) {
        let track = |id: TrackId| tracks.get(&id).copied().unwrap_or(id);
        let folder = |id: FolderId| folders.get(&id).copied().unwrap_or(id);
        if let Some(m) = &mut self.music {
            m.track_id = m.track_id.map(track);
            m.folder_id = m.folder_id.map(folder);
        }
        for l in &mut self.layers {
            l.track_id = track(l.track_id);
        }
        for p in &mut self.pads {
            p.track_id = p.track_id.map(track);
            p.folder_id = p.folder_id.map(folder);
        }
    }

    /// The pad fired by `key` (case-insensitive).
    pub fn pad_by_key(&self, key: &str) -> Option<&Pad> {
        let key = key.to_lowercase();
        self.pads.iter().find(|p| p.key.as_deref() == Some(key.as_str()))
    }
}

fn check_text(field: &str, text: &str, max_chars: usize) -> Result<(), String> {
    let chars = text.chars().count();
    if chars == 0 || chars > max_chars {
        return Err(format!("{field}: must be 1 to {max_chars} characters, not {chars}"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{field}: must not contain control characters"));
    }
    Ok(())
}

fn check_gain(field: &str, gain: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&gain) {
        Ok(())
    } else {
        Err(format!("{field}: {gain} is not between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<SceneSpec, String> {
        let mut s: SceneSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        s.normalize().map(|()| s)
    }

    #[test]
    fn pads_without_a_key_get_the_free_digits_in_order() {
        let s = spec(
            r#"{"name": " Tavern ", "pads": [{"trackId": 1}, {"trackId": 2, "key": "1"}, {"folderId": 3, "key": "Q"}, {"trackId": 4}]}"#,
        )
        .unwrap();
        assert_eq!(s.name, "Tavern");
        let keys: Vec<_> = s.pads.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(keys, ["2", "1", "q", "3"]);
        assert_eq!(s.pad_by_key("Q").and_then(|p| p.folder_id), Some(FolderId(3)));
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = |json: &str| spec(json).unwrap_err();
        assert!(err(r#"{"name": "  "}"#).starts_with("name:"));
        assert!(err(r#"{"name": "a", "music": {}}"#).starts_with("music:"));
        assert!(err(r#"{"name": "a", "music": {"trackId": 1, "shuffle": true}}"#).starts_with("music.shuffle:"));
        assert!(err(r#"{"name": "a", "layers": [{"trackId": 1, "gain": 1.5}]}"#).starts_with("layers[0].gain:"));
        assert!(err(r#"{"name": "a", "layers": [{"trackId": 1}, {"trackId": 1}]}"#).starts_with("layers[1].trackId:"));
        let nine: Vec<String> = (1..=9).map(|i| format!(r#"{{"trackId": {i}}}"#)).collect();
        assert!(err(&format!(r#"{{"name": "a", "layers": [{}]}}"#, nine.join(","))).starts_with("layers:"));
        assert!(err(r#"{"name": "a", "pads": [{"trackId": 1, "folderId": 2}]}"#).starts_with("pads[0]:"));
        assert!(err(r#"{"name": "a", "pads": [{"trackId": 1, "key": "F1"}]}"#).starts_with("pads[0].key:"));
        assert!(err(r#"{"name": "a", "pads": [{"trackId": 1, "key": "n"}]}"#).starts_with("pads[0].key:"));
        assert!(err(r#"{"name": "a", "pads": [{"trackId": 1, "key": "a"}, {"trackId": 2, "key": "A"}]}"#)
            .starts_with("pads[1].key:"));
        assert!(err(r#"{"name": "a", "crossfadeSeconds": 20}"#).starts_with("crossfadeSeconds:"));
        assert!(err(r#"{"name": "a", "colour": "red"}"#).contains("unknown field"));
    }

    #[test]
    fn an_import_puts_this_servers_ids_in_place() {
        let mut s = spec(r#"{"name": "a", "music": {"folderId": 7}, "layers": [{"trackId": 1}], "pads": [{"trackId": 2}, {"folderId": 7}]}"#).unwrap();
        s.map_ids(&HashMap::from([(TrackId(1), TrackId(11))]), &HashMap::from([(FolderId(7), FolderId(70))]));
        assert_eq!(s.track_ids(), [TrackId(11), TrackId(2)]);
        assert_eq!(s.folder_ids(), [FolderId(70)]);
    }
}
