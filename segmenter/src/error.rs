//! The segmenter's error type.

use std::path::PathBuf;

/// Everything that can go wrong while segmenting a track. Bad input returns one of these; it
/// never panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the source or writing output failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The container or codec is not one we decode (e.g. Opus, or not audio at all).
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    /// The container has no audio track.
    #[error("no audio track")]
    NoAudioTrack,
    /// The channel layout cannot be mixed to stereo.
    #[error("unsupported channel layout: {0}")]
    UnsupportedChannels(String),
    /// The sample rate is outside 8–192 kHz or unknown.
    #[error("unsupported sample rate: {0} Hz (supported: 8000-192000)")]
    UnsupportedSampleRate(u32),
    /// The decoder failed in a way it cannot recover from.
    #[error("decode error: {0}")]
    Decode(String),
    /// The resampler failed (a bug rather than bad input).
    #[error("resample error: {0}")]
    Resample(String),
    /// The AAC encoder failed or rejected its configuration.
    #[error("AAC encoder error: {0}")]
    Encode(String),
    /// The decoded track is longer than [`crate::MAX_DURATION`].
    #[error("track is longer than the {max_hours} h limit")]
    TooLong {
        /// The limit, in hours.
        max_hours: u64,
    },
    /// The source decoded to no audio at all.
    #[error("the source contains no audio samples")]
    Empty,
    /// A part given to [`crate::restamp`] is not one of ours.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// A bitrate ladder string or encoder parameter is invalid.
    #[error("invalid bitrate ladder: {0}")]
    InvalidLadder(String),
    /// The [`crate::PartSink`] asked to stop.
    #[error("part sink aborted: {0}")]
    Sink(String),
}

/// `Result` with the segmenter's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
