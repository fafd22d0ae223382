//! The bag of handles every request handler can draw from.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRef;

use crate::cache::SegmentCache;
use crate::clock::Clock;
use crate::library::Library;
use crate::metrics::Metrics;
use crate::rooms::Rooms;

/// Where the player's static files are.
#[derive(Clone)]
pub struct PlayerDir(pub PathBuf);

/// Shared server state. axum clones it for every request (each route's handler and each
/// extractor), so a clone is one reference count, not one per handle.
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn new(handles: Handles) -> Self {
        AppState(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// The handles inside [`AppState`].
pub struct Handles {
    pub library: Library,
    pub player_dir: PlayerDir,
    pub clock: Arc<dyn Clock>,
    pub cache: SegmentCache,
    /// Every room, with the admin key.
    pub rooms: Rooms,
    pub metrics: Metrics,
    /// Cancelled when the server starts shutting down.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl FromRef<AppState> for Metrics {
    fn from_ref(s: &AppState) -> Self {
        s.metrics.clone()
    }
}

impl FromRef<AppState> for SegmentCache {
    fn from_ref(s: &AppState) -> Self {
        s.cache.clone()
    }
}

impl FromRef<AppState> for Rooms {
    fn from_ref(s: &AppState) -> Self {
        s.rooms.clone()
    }
}

impl FromRef<AppState> for Library {
    fn from_ref(s: &AppState) -> Self {
        s.library.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Clock> {
    fn from_ref(s: &AppState) -> Self {
        s.clock.clone()
    }
}
