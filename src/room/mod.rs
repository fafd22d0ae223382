//! The live room: a timeline on the epoch grid, changed by GM commands through one actor.
//!
//! Playlist and part requests read the latest [`Timeline`] snapshot and never wait on the
//! actor. Commands take effect at the first part not yet published; the answer and the
//! broadcast state carry that part's PDT (`effectiveAt`).

pub mod actor;
pub mod ambience;
pub(crate) mod apply;
pub mod command;
pub mod delay;
pub mod error;
pub mod live;
pub mod playlist;
pub mod published;
pub mod timeline;

use serde::Serialize;

use crate::ids::{FolderId, TrackId};
pub use actor::{RoomHandle, RoomOptions};
pub use command::{command_docs, parse_command, Command, PadChoice, Play, QueueAction, COMMAND_NAMES};
pub use error::Error;
pub use timeline::{ActiveScene, Repeat, Timeline};

/// The track heard from `effectiveAt`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    pub track_id: TrackId,
    /// Empty when the track's details could not be read (the error is logged).
    pub title: String,
    pub artist: Option<String>,
    /// Seconds.
    pub duration: f64,
}

/// An ambience layer as the GM sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LayerItem {
    /// The layer's id, for `gain` and `remove`.
    pub id: u64,
    pub track_id: TrackId,
    pub title: String,
    /// 0..=1, linear.
    pub gain: f64,
}

/// What listeners hear from `effectiveAt` on; the body of `GET /api/session` and of the
/// socket's `state` messages.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub now_playing: Option<NowPlaying>,
    pub paused: bool,
    /// Nothing is current: silence until the GM plays something.
    pub stopped: bool,
    /// A window of the queue around the current track: `queue[i]` is queue position
    /// `queue_start + i`.
    pub queue: Vec<QueueItem>,
    /// Queue position of `queue[0]`.
    pub queue_start: usize,
    /// Tracks in the whole queue.
    pub queue_length: usize,
    /// Queue position of the current track (absolute, like every index in commands).
    pub queue_index: Option<usize>,
    pub repeat: Repeat,
    pub shuffle: bool,
    /// GM volume, 0..=1, applied in the stream: every listener hears it change at once.
    pub volume: f64,
    /// Track changes crossfade over this many seconds (0: a cut).
    pub crossfade_seconds: f64,
    /// Tracks are brought to `targetLufs` (from the next one put on the stage on).
    pub normalize: bool,
    pub target_lufs: f64,
    /// Ambience loops playing under the music.
    pub layers: Vec<LayerItem>,
    /// How far music and ambience are ducked, dB; null when they are not.
    pub duck_db: Option<f64>,
    /// The calibration tick is on: every listener hears a click on every whole second.
    pub tick: bool,
    /// The folder the queue was made from, while it still is.
    pub queue_folder_id: Option<FolderId>,
    /// The scene the GM switched to last, with what of it could not be played.
    pub scene: Option<ActiveScene>,
    /// How far behind the wall clock listeners play, ms: D, the same for every listener.
    pub playback_delay_ms: u64,
    /// How D is chosen: its target, whether the GM pinned it, which listener set it.
    pub delay: delay::DelayStatus,
    /// PDT from which this state is heard (RFC 3339, UTC, ms).
    pub effective_at: String,
    /// The same instant in Unix ms.
    pub effective_at_ms: u64,
    /// The last playback problem, such as a track that could not be decoded.
    pub error: Option<String>,
}
