//! bardcast: synchronized music for tabletop RPG sessions.
//!
//! The server binary is a thin shell around this library: [`App::start`] opens the
//! database, builds the [`router`] and serves it, so tests and benches run the same code.

pub mod cache;
pub mod clock;
pub mod config;
pub mod control;
pub mod device_check;
pub mod gm_key;
pub mod http;
pub mod ids;
pub mod library;
pub mod metrics;
pub mod rate_limit;
pub mod room;
pub mod rooms;
pub mod scene;
pub mod stage;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;

pub use http::router;

use cache::SegmentCache;
use clock::Clock;
use config::ServeConfig;
use gm_key::GmKey;
use library::Library;
use room::RoomOptions;
use rooms::{Rooms, RoomsConfig};
use state::{AppState, Handles, PlayerDir};

/// Settings key under which a generated GM key is kept.
const GM_KEY_SETTING: &str = "gm_key";

/// A running server.
pub struct App {
    pub state: AppState,
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    watcher: Option<library::watcher::Watcher>,
}

impl App {
    /// Opens the library, resolves the GM key and binds the listening socket.
    pub async fn start(config: &ServeConfig, clock: Arc<dyn Clock>) -> Result<App, String> {
        let music_dir = if config.demo {
            let dir = config.demo_dir();
            library::demo::write_demo_library(&dir)
                .map_err(|e| format!("cannot write demo tracks to {}: {e}", dir.display()))?;
            dir
        } else {
            config.music_dir.clone()
        };
        let library = Library::open(&config.database_path, music_dir, clock.clone())?;
        if let Err(e) = library.music_dir_status() {
            tracing::warn!("{e}; the library stays as last scanned until the folder is back");
        }
        let gm_key = resolve_gm_key(&library, config.gm_key.as_deref())?;
        let cache = SegmentCache::open_with(
            &config.cache_dir,
            config.cache_max_bytes,
            config.bitrates.0.clone(),
            config.cache_concurrency.map_or_else(cache::default_prepare_concurrency, usize::from),
        )?;
        let options = RoomOptions {
            playback_delay_ms: config.playback_delay_ms,
            max_playback_delay_ms: config.max_playback_delay_ms,
            shuffle_seed: config.shuffle_seed,
        };
        let rooms = Rooms::open(RoomsConfig {
            library: library.clone(),
            cache: cache.clone(),
            clock: clock.clone(),
            options,
            admin_key: GmKey::new(gm_key),
            max_rooms: usize::try_from(config.max_rooms).unwrap_or(usize::MAX),
        })
        .await?;
        tokio::spawn(record_loudness(cache.clone(), library.clone()));
        let state = AppState::new(Handles {
            library,
            player_dir: PlayerDir(config.player_dir.clone()),
            clock,
            cache,
            rooms,
            metrics: metrics::Metrics::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
        });
        let listener = tokio::net::TcpListener::bind((config.host, config.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Watching first, so a change during the startup scan is scanned after it.
        let options = library::watcher::WatchOptions::new(config.watch, config.rescan_interval);
        let watcher = library::watcher::Watcher::start(state.library.clone(), options);
        if config.scan_on_startup && state.library.music_dir_status().is_ok() {
            state.library.start_scan().map_err(|e| e.to_string())?;
        }
        Ok(App { state, addr, listener, watcher })
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests and the scan finish.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let library = self.state.library.clone();
        let watcher = self.watcher;
        let cache = self.state.cache.clone();
        let rooms = self.state.rooms.clone();
        let stopping = self.state.shutdown.clone();
        let app = router(self.state);
        let signalled = stopping.clone();
        // No Nagle: small writes (pongs, state messages, playlist answers) leave at once
        // instead of waiting for the peer to acknowledge the previous one.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        // A make-service shares one finished router; serving the `Router` itself would copy
        // the whole route table into every connection (about 1 KiB per route each).
        // Connect info gives the GM key guard each client's address.
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let graceful = axum::serve(listener, service).with_graceful_shutdown(async move {
            shutdown.await;
            // Control sockets say goodbye and close; parked playlist requests answer.
            signalled.cancel();
        });
        // In-flight requests get until 8 s after the signal; then the server stops anyway.
        let deadline = async move {
            stopping.cancelled().await;
            tokio::time::sleep(std::time::Duration::from_secs(8)).await;
        };
        tokio::select! {
            result = graceful => result?,
            () = deadline => tracing::warn!("connections still open after 8 s; closing them"),
        }
        // Running encodes stop at their next part; their unfinished folders are removed.
        cache.close();
        rooms.stop_all().await;
        // The watcher first, so it starts no scan after this one stops.
        let stop = move || {
            drop(watcher);
            library.stop_scan();
        };
        tokio::task::spawn_blocking(stop).await.map_err(std::io::Error::other)?;
        Ok(())
    }
}

/// The configured key, or the one kept in the database, or a new one (kept for next time).
fn resolve_gm_key(library: &Library, configured: Option<&str>) -> Result<String, String> {
    if let Some(k) = configured.map(str::trim).filter(|k| !k.is_empty()) {
        if k.chars().count() < gm_key::MIN_KEY_CHARS {
            tracing::warn!(
                "GM_KEY is {} characters long; use at least {} (unset it and bardcast generates a strong one)",
                k.chars().count(),
                gm_key::MIN_KEY_CHARS
            );
        }
        return Ok(k.to_owned());
    }
    library
        .call_blocking(|db| {
            if let Some(k) = db.setting(GM_KEY_SETTING)? {
                return Ok(k);
            }
            let key = gm_key::new_key();
            db.set_setting(GM_KEY_SETTING, &key)?;
            Ok(key)
        })
        .map_err(|e| format!("cannot read or store the GM key: {e}"))
}

/// Keeps each track's loudness in SQLite as the cache measures it (on its first encode).
async fn record_loudness(cache: SegmentCache, library: Library) {
    let mut measured = cache.measured();
    loop {
        match measured.recv().await {
            Ok((fingerprint, lufs)) => {
                if let Err(e) = library.call(move |db| Ok(db.set_loudness(&fingerprint, lufs)?)).await {
                    tracing::warn!(error = %e, "cannot record a track's loudness");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "loudness measurements came faster than they were recorded");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
