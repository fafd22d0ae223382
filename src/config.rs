//! Command line and environment configuration.
//!
//! Every flag has an environment name and a default that works from a fresh clone.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// bardcast: synchronized music for tabletop RPG sessions.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeConfig,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(ServeConfig),
    /// Write one file as a VOD HLS rendition (index.m3u8, init.mp4, segments) and exit.
    Segment(SegmentArgs),
}

/// Arguments of `bardcast segment`.
#[derive(Debug, Clone, Args)]
pub struct SegmentArgs {
    /// Audio file to segment (mp3, flac, ogg, wav, aiff, m4a).
    pub input: PathBuf,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// AAC bitrate in kbit/s (32-512).
    #[arg(long, default_value = "256", value_parser = parse_bitrate)]
    pub bitrate: segmenter::EncoderParams,
}

/// Settings of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    /// Address to bind (0.0.0.0 for every interface).
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Folder with the music library; it is only ever read.
    #[arg(long, env = "MUSIC_DIR", default_value = "./music")]
    pub music_dir: PathBuf,
    /// SQLite database file (created with its folder if missing).
    #[arg(long, env = "DATABASE_PATH", default_value = "./data/bardcast.db")]
    pub database_path: PathBuf,
    /// Folder for encoded segments.
    #[arg(long, env = "CACHE_DIR", default_value = "./data/cache")]
    pub cache_dir: PathBuf,
    /// Size cap of the segment cache in bytes; least recently used tracks are evicted.
    #[arg(long, env = "CACHE_MAX_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub cache_max_bytes: u64,
    /// AAC bitrates of the live renditions in kbit/s, comma separated (a ladder, e.g. "256,96").
    #[arg(long, env = "BITRATES", default_value = "256", value_parser = parse_ladder)]
    pub bitrates: Ladder,
    /// Encodes that background pre-segmenting runs at once (default: one fewer than the cores, at least 1).
    #[arg(long, env = "CACHE_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub cache_concurrency: Option<u16>,
    /// How far behind the wall clock listeners play, in ms (the room's playback delay D): where
    /// D starts and the least it adapts down to.
    #[arg(long, env = "PLAYBACK_DELAY_MS", default_value_t = 400, value_parser = clap::value_parser!(u64).range(100..=10_000))]
    pub playback_delay_ms: u64,
    /// The most D adapts up to when a listener's parts arrive late, in ms; a listener that would
    /// need more is shown as unable to keep up.
    #[arg(long, env = "MAX_PLAYBACK_DELAY_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=10_000))]
    pub max_playback_delay_ms: u64,
    /// Rooms this server holds at once (the room `main` included); each costs little while
    /// idle and about 3 % of a core per rendition while its stage plays to listeners.
    #[arg(long, env = "MAX_ROOMS", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_rooms: u64,
    /// The admin key: creates and deletes rooms and acts as GM in any room; generated at first
    /// start and kept in the database when unset.
    #[arg(long, env = "GM_KEY", hide_env_values = true)]
    pub gm_key: Option<String>,
    /// Scan the music folder when the server starts.
    #[arg(long, env = "SCAN_ON_STARTUP", default_value_t = true, action = clap::ArgAction::Set)]
    pub scan_on_startup: bool,
    /// Watch the music folder (inotify on Linux): a file added, changed, renamed or removed is scanned
    /// after a quiet second (at most 3 s while changes keep coming). Network mounts (NFS, SMB) and some
    /// container mounts report no changes made elsewhere; RESCAN_INTERVAL covers those.
    #[arg(long, env = "WATCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch: bool,
    /// Seconds between periodic incremental rescans (0 = never): the safety net for changes the watcher
    /// cannot see. A rescan lists every file but reads only new or changed ones, so 300 costs little.
    #[arg(long, env = "RESCAN_INTERVAL", default_value_t = 300)]
    pub rescan_interval: u64,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", value_parser = parse_log_level)]
    pub log_level: String,
    /// Log output format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Folder with the player's pages and scripts.
    #[arg(long, env = "PLAYER_DIR", default_value = "./player")]
    pub player_dir: PathBuf,
    /// Seed of the room's shuffle order, so a test can replay a shuffle (random when unset).
    #[arg(long, hide = true)]
    pub shuffle_seed: Option<u64>,
    /// Write a few short synthesized tracks into the data folder and use them as the library.
    #[arg(long, env = "DEMO", default_value_t = false)]
    pub demo: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, coloured when writing to a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl ServeConfig {
    /// Folder the demo tracks are written to: beside the database.
    pub fn demo_dir(&self) -> PathBuf {
        self.database_path.parent().map(|p| p.join("demo-music")).unwrap_or_else(|| PathBuf::from("demo-music"))
    }
}

fn parse_log_level(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a log level or filter: {e}"))
}

/// The renditions to encode, highest first.
#[derive(Debug, Clone)]
pub struct Ladder(pub Vec<segmenter::EncoderParams>);

fn parse_ladder(s: &str) -> Result<Ladder, String> {
    segmenter::parse_ladder(s).map(Ladder).map_err(|e| e.to_string())
}

fn parse_bitrate(s: &str) -> Result<segmenter::EncoderParams, String> {
    match segmenter::parse_ladder(s).map_err(|e| e.to_string())?.as_slice() {
        [one] => Ok(*one),
        _ => Err("give one bitrate in kbit/s, e.g. 256".into()),
    }
}
