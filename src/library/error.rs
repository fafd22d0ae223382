//! Why a library operation failed.

/// A library error; `http` maps each variant to a status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named thing (a track, a folder) does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request asks for something impossible, such as a folder inside itself.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state, such as a second scan.
    #[error("{0}")]
    Conflict(String),
    /// SQLite failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// Something that should not happen: a poisoned lock, a thread that could not start.
    #[error("{0}")]
    Internal(String),
}

/// Result of a library operation.
pub type Result<T> = std::result::Result<T, Error>;
