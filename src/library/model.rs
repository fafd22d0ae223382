//! The library's data as the API shows it (camelCase JSON).

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{FolderId, TrackId};

/// Largest page a list request may ask for.
pub const MAX_PAGE_LIMIT: u64 = 500;
/// Page size when none is asked for.
pub const DEFAULT_PAGE_LIMIT: u64 = 100;

/// A track found in the music folder.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub id: TrackId,
    /// Path relative to the music folder (lossy UTF-8 for display).
    pub filepath: String,
    pub filename: String,
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub track_number: Option<u32>,
    pub disc_number: Option<u32>,
    /// Seconds.
    pub duration: f64,
    pub format: String,
    /// kbit/s.
    pub bitrate: Option<u32>,
    /// Hz.
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// Bytes.
    pub file_size: u64,
    /// The file is gone from the music folder (the track keeps its id and folders).
    pub missing: bool,
    pub has_cover: bool,
    /// Integrated loudness (EBU R128), LUFS, once the track was first encoded.
    pub loudness_lufs: Option<f64>,
}

/// A virtual folder with its sub-folders.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Folder {
    pub id: FolderId,
    pub name: String,
    pub parent_id: Option<FolderId>,
    pub sort_order: i64,
    /// Tracks directly in this folder.
    pub track_count: u64,
    #[schema(no_recursion)]
    pub children: Vec<Folder>,
}

/// A change to a folder: each field present is applied.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FolderPatch {
    pub name: Option<String>,
    /// `Some(None)` moves the folder to the top level; absent leaves it where it is.
    #[serde(default, deserialize_with = "present_or_null")]
    pub parent_id: Option<Option<FolderId>>,
    /// Index among the siblings (0 = first).
    pub sort_order: Option<i64>,
}

fn present_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<FolderId>>, D::Error> {
    Option::<FolderId>::deserialize(d).map(Some)
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    /// 1-based.
    pub page: u64,
    pub limit: u64,
}

/// Ordering of a track list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrackSort {
    Title,
    Artist,
    Album,
    Filepath,
    Duration,
    Added,
}

impl TrackSort {
    pub(super) fn order_by(self) -> &'static str {
        match self {
            TrackSort::Title => "t.title COLLATE NOCASE, t.id",
            TrackSort::Artist => "t.artist COLLATE NOCASE, t.album COLLATE NOCASE, t.disc_number, t.track_number, t.id",
            TrackSort::Album => "t.album COLLATE NOCASE, t.disc_number, t.track_number, t.id",
            TrackSort::Filepath => "t.filepath, t.id",
            TrackSort::Duration => "t.duration_ms, t.id",
            TrackSort::Added => "t.added_at DESC, t.id",
        }
    }
}

/// Filters and paging of `GET /api/tracks`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    #[serde(default = "first_page")]
    pub page: u64,
    #[serde(default = "default_limit")]
    pub limit: u64,
    pub search: Option<String>,
    pub folder_id: Option<FolderId>,
    pub sort: Option<TrackSort>,
}

impl Default for TrackQuery {
    fn default() -> Self {
        Self { page: 1, limit: DEFAULT_PAGE_LIMIT, search: None, folder_id: None, sort: None }
    }
}

fn first_page() -> u64 {
    1
}

fn default_limit() -> u64 {
    DEFAULT_PAGE_LIMIT
}

/// A file the last scan could not read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanError {
    /// Path relative to the music folder.
    pub filepath: String,
    pub reason: String,
    /// When it was recorded, ms since the epoch.
    pub at_ms: i64,
}

/// Ids of tracks to act on, for bulk requests.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackIds {
    pub track_ids: Vec<TrackId>,
    /// Index to insert at (default: the end).
    pub position: Option<usize>,
}
