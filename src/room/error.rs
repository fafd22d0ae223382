//! Why a room command failed.

use crate::library;

/// A room error; `http` maps each variant to a status, the control socket to a code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No command has this name.
    #[error("no command named {0:?}")]
    UnknownCommand(String),
    /// A command's body or values are wrong; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// A track or folder that does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Cannot be done in the room's current state: nothing playing, a missing file.
    #[error("{0}")]
    Conflict(String),
    /// The room cannot take commands now: shutting down, or too busy.
    #[error("{0}")]
    Unavailable(String),
    /// The library failed.
    #[error(transparent)]
    Library(#[from] library::Error),
    /// A bug caught by the actor (a panic while applying a command); the room carries on.
    #[error("internal error: {0}")]
    Internal(String),
}
