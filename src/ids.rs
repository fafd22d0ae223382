//! Identifier newtypes, so a track id is never passed where a folder id belongs.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A track's row id; stable across rescans, renames and restarts.
    TrackId
);
id_type!(
    /// A virtual folder's row id.
    FolderId
);
id_type!(
    /// A scene's row id.
    SceneId
);
