//! The live room: a timeline on the epoch grid, changed by GM commands through one actor.
//!
//! Playlist and part requests read the latest [`Timeline`] snapshot and never wait on the
//! actor. Commands take effect at the first part not yet published; the answer and the
//! broadcast state carry that part's PDT (`effectiveAt`).

pub mod actor;
pub mod live;
pub mod playlist;
pub mod timeline;

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::ids::{FolderId, TrackId};
pub use actor::RoomHandle;
pub use timeline::{Repeat, Timeline};

/// A change to the queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum QueueAction {
    #[serde(rename_all = "camelCase")]
    Add { track_ids: Vec<TrackId> },
    Remove { index: usize },
    /// `to` is the item's index after the move.
    Move { from: usize, to: usize },
    Clear {},
}

/// A GM command, from REST (`POST /api/session/<command>`) or the control socket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase", deny_unknown_fields)]
pub enum Command {
    /// Play a track (from `position` seconds) or a folder (its tracks become the queue).
    #[serde(rename_all = "camelCase")]
    Play {
        track_id: Option<TrackId>,
        folder_id: Option<FolderId>,
        /// Seconds into the track.
        position: Option<f64>,
        shuffle: Option<bool>,
    },
    Pause {},
    Resume {},
    /// Jump to `position` seconds in the current track.
    Seek { position: f64 },
    Stop {},
    Next {},
    Previous {},
    Queue(QueueAction),
    Repeat { mode: Repeat },
    Shuffle { on: bool },
    /// Master volume, 0..=1.
    Volume { volume: f64 },
}

/// The track heard from `effectiveAt`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NowPlaying {
    pub track_id: TrackId,
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    /// Seconds.
    pub duration: f64,
    /// Seconds into the track at `effectiveAt`.
    pub position: f64,
    pub has_cover: bool,
}

/// One queued track.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    pub track_id: TrackId,
    pub title: String,
    pub artist: Option<String>,
    /// Seconds.
    pub duration: f64,
}

/// What listeners hear from `effectiveAt` on; the body of `GET /api/session` and of the
/// socket's `state` messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub now_playing: Option<NowPlaying>,
    pub paused: bool,
    /// Nothing is current: silence until the GM plays something.
    pub stopped: bool,
    pub queue: Vec<QueueItem>,
    pub queue_index: Option<usize>,
    pub repeat: Repeat,
    pub shuffle: bool,
    /// 0..=1.
    pub volume: f64,
    /// How far behind the wall clock listeners play, ms.
    pub playback_delay_ms: u64,
    /// PDT from which this state is heard (RFC 3339, UTC, ms).
    pub effective_at: String,
    /// The same instant in Unix ms.
    pub effective_at_ms: u64,
    /// The last playback problem, such as a track that could not be decoded.
    pub error: Option<String>,
}

/// Reads `{"command": name, ...body}` as a [`Command`].
pub fn parse_command(name: &str, body: &[u8]) -> AppResult<Command> {
    let mut value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))?
    };
    let obj = value
        .as_object_mut()
        .ok_or_else(|| AppError::BadRequest("the body must be a JSON object".into()))?;
    obj.insert("command".into(), name.into());
    serde_json::from_value(value).map_err(|e| {
        if e.to_string().starts_with("unknown variant") {
            AppError::NotFound("command")
        } else {
            AppError::BadRequest(e.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_name_and_body() {
        assert_eq!(parse_command("pause", b"").unwrap(), Command::Pause {});
        assert_eq!(
            parse_command("play", br#"{"trackId": 4, "position": 12.5}"#).unwrap(),
            Command::Play { track_id: Some(TrackId(4)), folder_id: None, position: Some(12.5), shuffle: None }
        );
        assert_eq!(
            parse_command("queue", br#"{"action": "move", "from": 1, "to": 0}"#).unwrap(),
            Command::Queue(QueueAction::Move { from: 1, to: 0 })
        );
        assert!(matches!(parse_command("dance", b"{}"), Err(AppError::NotFound(_))));
        assert!(matches!(parse_command("seek", b"{}"), Err(AppError::BadRequest(_))));
        assert!(matches!(parse_command("pause", br#"{"x":1}"#), Err(AppError::BadRequest(_))));
        assert!(matches!(parse_command("pause", b"[1]"), Err(AppError::BadRequest(_))));
    }
}
