//! The cache's files. A track is complete exactly when its folder exists under its final name:
//!
//! ```text
//! CACHE_DIR/<cache key of each rendition, joined by '+'>/
//!   <fingerprint>/            a complete track
//!     r0.data r1.data …       each rendition's parts back to back (`moof` + `mdat` each)
//!     manifest.json           part count and every part's size
//!   .tmp-<fingerprint>-<n>/   an encode in progress (removed at open: it never finished)
//!   .trash-<fingerprint>-<n>/ an evicted track being deleted
//! ```
//!
//! An encode writes into its `.tmp-` folder, syncs the data files, writes the manifest, syncs
//! the folder and renames it into place, so a crash or kill at any moment leaves either no
//! track or a complete one. One data file per rendition (rather than one file per part) keeps
//! a 5-minute track to three files and three `fsync`s instead of hundreds; the manifest's
//! part sizes give each part's byte range, and the data file's length is checked against
//! them when the cache opens.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use segmenter::EncoderParams;

/// Name of the manifest inside a track folder.
pub(super) const MANIFEST: &str = "manifest.json";
/// Bumped when the layout of a track folder changes; older folders are re-encoded.
const MANIFEST_VERSION: u32 = 2;
/// Prefix of encodes in progress.
const TMP_PREFIX: &str = ".tmp-";
/// Prefix of evicted tracks being deleted.
const TRASH_PREFIX: &str = ".trash-";
/// Prefix shared by every ladder folder this code writes (see `EncoderParams::cache_key`).
const LADDER_PREFIX: &str = "aaclc-";

/// What `manifest.json` holds; written last.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Manifest {
    pub version: u32,
    /// The source's fingerprint, as the library gave it.
    pub fingerprint: String,
    /// `EncoderParams::cache_key` of each rendition.
    pub ladder: Vec<String>,
    /// Parts per rendition.
    pub parts: u64,
    /// Decoded length in samples at 48 kHz.
    pub duration_samples: u64,
    /// Per rendition, each part's size in bytes.
    pub part_sizes: Vec<Vec<u32>>,
    /// Rendition 0's AAC frame before frame 0 (see `TrackSummary::lead_in`); empty in caches
    /// written before it was kept.
    #[serde(default)]
    pub lead_in: Vec<u8>,
    /// Integrated loudness (EBU R128), LUFS; `None` for silence.
    #[serde(default)]
    pub loudness_lufs: Option<f64>,
}

impl Manifest {
    pub fn new(
        fingerprint: &str,
        ladder: &[EncoderParams],
        duration_samples: u64,
        ends: &[Vec<u64>],
        lead_in: Vec<u8>,
        loudness_lufs: Option<f64>,
    ) -> Self {
        let part_sizes = ends
            .iter()
            .map(|e| {
                let mut prev = 0;
                e.iter()
                    .map(|&end| {
                        let size = end - prev;
                        prev = end;
                        size as u32
                    })
                    .collect()
            })
            .collect();
        Manifest {
            version: MANIFEST_VERSION,
            fingerprint: fingerprint.to_owned(),
            ladder: ladder_keys(ladder),
            parts: ends.first().map_or(0, |e| e.len() as u64),
            duration_samples,
            part_sizes,
            lead_in,
            loudness_lufs,
        }
    }

    /// Per rendition, the end offset of each part in its data file.
    fn ends(&self) -> Vec<Vec<u64>> {
        self.part_sizes
            .iter()
            .map(|sizes| {
                sizes
                    .iter()
                    .scan(0u64, |end, &s| {
                        *end += u64::from(s);
                        Some(*end)
                    })
                    .collect()
            })
            .collect()
    }
}

/// A complete track found when the cache opened.
pub(super) struct Found {
    pub name: String,
    pub ends: Vec<Vec<u64>>,
    pub bytes: u64,
    /// Decoded length in samples at 48 kHz.
    pub samples: u64,
    pub lead_in: Vec<u8>,
    pub loudness_lufs: Option<f64>,
    /// When the track was completed (the manifest's mtime): its place in the LRU order.
    pub completed: SystemTime,
}

fn ladder_keys(ladder: &[EncoderParams]) -> Vec<String> {
    ladder.iter().map(EncoderParams::cache_key).collect()
}

/// Name of the folder holding every track of this ladder.
pub(super) fn ladder_dir(ladder: &[EncoderParams]) -> String {
    ladder_keys(ladder).join("+")
}

/// A folder name for a fingerprint: itself when it is plain ASCII, else a hash of it.
pub(super) fn track_dir_name(fingerprint: &str) -> String {
    let plain = !fingerprint.is_empty()
        && fingerprint.len() <= 64
        && fingerprint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        fingerprint.to_owned()
    } else {
        format!("h{:032x}", xxh3_128(fingerprint.as_bytes()))
    }
}

/// The data file of rendition `r` inside a track folder.
pub(super) fn data_file(track_dir: &Path, r: usize) -> PathBuf {
    track_dir.join(format!("r{r}.data"))
}

/// A fresh folder name for an encode of `name`.
pub(super) fn tmp_dir(root: &Path, name: &str, seq: u64) -> PathBuf {
    root.join(format!("{TMP_PREFIX}{name}-{seq}"))
}

/// Moves a track folder out of its final name (atomically), to be deleted with [`remove`].
pub(super) fn to_trash(root: &Path, name: &str, seq: u64) -> io::Result<PathBuf> {
    let trash = root.join(format!("{TRASH_PREFIX}{name}-{seq}"));
    fs::rename(root.join(name), &trash)?;
    Ok(trash)
}

/// Deletes a folder and what it holds; a folder already gone is fine.
pub(super) fn remove(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot delete cache folder"),
    }
}

/// Makes the encode in `tmp` durable and renames it to `root/name`: data files synced,
/// manifest written atomically, folders synced.
pub(super) fn commit(
    root: &Path,
    tmp: &Path,
    name: &str,
    files: &[std::sync::Arc<File>],
    manifest: &Manifest,
) -> io::Result<()> {
    for f in files {
        f.sync_all()?;
    }
    let json = serde_json::to_vec(manifest).map_err(io::Error::other)?;
    segmenter::vod::write_atomic(&tmp.join(MANIFEST), &json).map_err(io::Error::other)?;
    File::open(tmp)?.sync_all()?;
    fs::rename(tmp, root.join(name))?;
    File::open(root)?.sync_all()
}

/// Scans `cache_dir` for the ladder's complete tracks. Removes what cannot be served: encodes
/// that never finished, half-deleted tracks, folders with a bad manifest or data file, and
/// folders of other ladders (their bytes would otherwise count against no cap).
pub(super) fn open(cache_dir: &Path, ladder: &[EncoderParams]) -> io::Result<(PathBuf, Vec<Found>)> {
    let ours = ladder_dir(ladder);
    let root = cache_dir.join(&ours);
    fs::create_dir_all(&root)?;
    for entry in fs::read_dir(cache_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != ours && name.starts_with(LADDER_PREFIX) && entry.file_type()?.is_dir() {
            tracing::info!(dir = %entry.path().display(), "removing the cache of another bitrate ladder");
            remove(&entry.path());
        }
    }
    let keys = ladder_keys(ladder);
    let mut found = Vec::new();
    for entry in fs::read_dir(&root)? {
        let entry = entry?;
        let path = entry.path();
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            tracing::debug!(dir = %path.display(), "removing an unfinished encode");
            remove(&path);
            continue;
        }
        match load_track(&path, &name, &keys) {
            Ok(f) => found.push(f),
            Err(why) => {
                tracing::warn!(dir = %path.display(), %why, "removing an unusable cached track");
                remove(&path);
            }
        }
    }
    Ok((root, found))
}

fn load_track(dir: &Path, name: &str, keys: &[String]) -> Result<Found, String> {
    let manifest_path = dir.join(MANIFEST);
    let text = fs::read(&manifest_path).map_err(|e| format!("no manifest: {e}"))?;
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| format!("bad manifest: {e}"))?;
    if m.version != MANIFEST_VERSION {
        return Err(format!("manifest version {} is not {MANIFEST_VERSION}", m.version));
    }
    if track_dir_name(&m.fingerprint) != name || m.ladder != keys {
        return Err("manifest names another track or ladder".into());
    }
    if m.part_sizes.len() != keys.len() || m.part_sizes.iter().any(|s| s.len() as u64 != m.parts) {
        return Err("manifest part counts disagree".into());
    }
    let ends = m.ends();
    let mut bytes = 0;
    for (r, e) in ends.iter().enumerate() {
        let want = e.last().copied().unwrap_or(0);
        let have = fs::metadata(data_file(dir, r)).map_err(|e| format!("rendition {r}: {e}"))?.len();
        if have != want {
            return Err(format!("rendition {r} holds {have} bytes, the manifest says {want}"));
        }
        bytes += have;
    }
    let completed = fs::metadata(&manifest_path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(Found {
        name: name.to_owned(),
        ends,
        bytes,
        samples: m.duration_samples,
        lead_in: m.lead_in,
        loudness_lufs: m.loudness_lufs,
        completed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fingerprints_name_their_folder() {
        assert_eq!(track_dir_name("0123abcdef"), "0123abcdef");
        for odd in ["", "../etc", "a/b", ".hidden", &"x".repeat(65)] {
            let n = track_dir_name(odd);
            assert!(n.starts_with('h') && n.len() == 33, "{odd:?} -> {n}");
        }
    }

    #[test]
    fn manifest_sizes_round_trip_to_offsets() {
        let ends = vec![vec![10, 25, 31]];
        let m = Manifest::new("fp", &[EncoderParams::default()], 1000, &ends, vec![1, 2], Some(-18.0));
        assert_eq!(m.part_sizes, vec![vec![10, 15, 6]]);
        assert_eq!(m.parts, 3);
        assert_eq!(m.ends(), ends);
    }
}
