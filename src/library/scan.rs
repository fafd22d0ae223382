//! Walks the music folder (read-only) and reads each audio file's tags with lofty.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use lofty::config::ParseOptions;
use lofty::file::{FileType, TaggedFile};
use lofty::prelude::*;
use lofty::probe::Probe;
use xxhash_rust::xxh3::Xxh3;

use super::db::{FailedFile, ScannedFile};

/// File extensions treated as audio (lower case).
const AUDIO_EXTENSIONS: &[&str] =
    &["mp3", "flac", "ogg", "oga", "opus", "wav", "wave", "aif", "aiff", "aifc", "m4a", "m4b", "mp4", "aac", "alac"];

/// Bytes hashed at each end of a file for its fingerprint.
const FINGERPRINT_WINDOW: u64 = 64 * 1024;

/// An audio file found on disk.
#[derive(Debug, Clone)]
pub struct FoundFile {
    pub path: PathBuf,
    /// Path relative to the music folder, as raw bytes.
    pub relpath: Vec<u8>,
    /// Bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
}

/// Lists the audio files under `root`, following symlinks but never looping, skipping
/// hidden entries and files that are not audio by extension.
pub fn walk(root: &Path) -> std::io::Result<Vec<FoundFile>> {
    std::fs::read_dir(root)?; // a missing or unreadable root is an error, not an empty library
    let mut out = Vec::new();
    let mut seen_inodes: HashSet<(u64, u64)> = HashSet::new();
    let walker = walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name();
    let mut it = walker.into_iter();
    while let Some(entry) = it.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                // Loops, dangling links and unreadable directories are skipped.
                tracing::debug!(error = %e, "skipping an entry of the music folder");
                continue;
            }
        };
        let name = entry.file_name().as_bytes();
        if entry.depth() > 0 && name.first() == Some(&b'.') {
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        if !entry.file_type().is_file() || !is_audio(entry.path()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        // Two links to one file are one track: the first path in walk order.
        if !seen_inodes.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        out.push(FoundFile {
            path: entry.path().to_path_buf(),
            relpath: rel.as_os_str().as_bytes().to_vec(),
            size: meta.len(),
            mtime_ns: meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0),
        });
    }
    Ok(out)
}

fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Reads several files on at most `threads` threads; results keep the input order.
pub fn read_files(files: &[FoundFile], threads: usize) -> Vec<Result<ScannedFile, FailedFile>> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<ScannedFile, FailedFile>>> = vec![None; files.len()];
    let slots: Vec<std::sync::Mutex<&mut Option<Result<ScannedFile, FailedFile>>>> =
        results.iter_mut().map(std::sync::Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                let r = read_file(f);
                if let Ok(mut slot) = slots[i].lock() {
                    **slot = Some(r);
                }
            });
        }
    });
    drop(slots);
    results
        .into_iter()
        .zip(files)
        .map(|(r, f)| r.unwrap_or_else(|| Err(failed(f, "the file could not be read".into()))))
        .collect()
}

fn failed(f: &FoundFile, reason: String) -> FailedFile {
    FailedFile { relpath: f.relpath.clone(), filepath: display_path(&f.relpath), reason }
}

/// The relative path for display: lossy UTF-8.
pub fn display_path(relpath: &[u8]) -> String {
    String::from_utf8_lossy(relpath).into_owned()
}

/// Reads one file's tags, properties and fingerprint. Never panics: any failure is a reason.
pub fn read_file(f: &FoundFile) -> Result<ScannedFile, FailedFile> {
    if f.size == 0 {
        return Err(failed(f, "empty file (0 bytes)".into()));
    }
    let tagged = match std::panic::catch_unwind(|| open_tagged(&f.path)) {
        Ok(Ok(t)) => t,
        Ok(Err(reason)) => return Err(failed(f, reason)),
        Err(_) => return Err(failed(f, "the tag reader crashed on this file".into())),
    };
    let props = tagged.properties();
    let duration_ms = props.duration().as_millis() as u64;
    if duration_ms == 0 {
        return Err(failed(f, "no audio found (zero duration)".into()));
    }
    let fingerprint = fingerprint(&f.path, f.size).map_err(|e| failed(f, format!("cannot read: {e}")))?;
    let tag = tagged.primary_tag().or_else(|| tagged.first_tag());
    let text = |v: Option<std::borrow::Cow<'_, str>>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let filename = Path::new(std::ffi::OsStr::from_bytes(&f.relpath))
        .file_name()
        .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
        .unwrap_or_default();
    let stem =
        Path::new(&filename).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| filename.clone());
    Ok(ScannedFile {
        relpath: f.relpath.clone(),
        filepath: display_path(&f.relpath),
        title: tag.and_then(|t| text(t.title())).unwrap_or(stem),
        artist: tag.and_then(|t| text(t.artist())),
        album: tag.and_then(|t| text(t.album())),
        track_number: tag.and_then(|t| t.track()),
        disc_number: tag.and_then(|t| t.disk()),
        filename,
        duration_ms,
        format: format_name(tagged.file_type()).to_owned(),
        bitrate: props.audio_bitrate().or(props.overall_bitrate()),
        sample_rate: props.sample_rate(),
        channels: props.channels(),
        file_size: f.size,
        mtime_ns: f.mtime_ns,
        has_cover: tagged.tags().iter().any(|t| !t.pictures().is_empty()),
        fingerprint,
    })
}

/// Opens a file with lofty, probing its content rather than trusting the extension.
pub fn open_tagged(path: &Path) -> Result<TaggedFile, String> {
    let probe = Probe::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .options(ParseOptions::new().read_cover_art(true))
        .guess_file_type()
        .map_err(|e| format!("cannot read: {e}"))?;
    if probe.file_type().is_none() {
        return Err("not a recognised audio format".into());
    }
    probe.read().map_err(|e| format!("unreadable or corrupt: {e}"))
}

/// Short lower-case name of a file type, as stored in `tracks.format`.
fn format_name(t: FileType) -> &'static str {
    match t {
        FileType::Aac => "aac",
        FileType::Aiff => "aiff",
        FileType::Ape => "ape",
        FileType::Flac => "flac",
        FileType::Mpeg => "mp3",
        FileType::Mp4 => "m4a",
        FileType::Mpc => "mpc",
        FileType::Opus => "opus",
        FileType::Vorbis => "ogg",
        FileType::Speex => "speex",
        FileType::Wav => "wav",
        FileType::WavPack => "wavpack",
        FileType::Custom(name) => name,
        _ => "other",
    }
}

/// A content hash of the file's size and its first and last 64 KiB, hex encoded. Enough
/// to recognise a moved or renamed file without reading all of it.
pub fn fingerprint(path: &Path, size: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Xxh3::new();
    hasher.update(&size.to_le_bytes());
    let mut buf = vec![0u8; FINGERPRINT_WINDOW as usize];
    let head = read_up_to(&mut file, &mut buf)?;
    hasher.update(&buf[..head]);
    if size > FINGERPRINT_WINDOW * 2 {
        file.seek(SeekFrom::Start(size - FINGERPRINT_WINDOW))?;
        let tail = read_up_to(&mut file, &mut buf)?;
        hasher.update(&buf[..tail]);
    } else if size > FINGERPRINT_WINDOW {
        let rest = read_up_to(&mut file, &mut buf)?;
        hasher.update(&buf[..rest]);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
