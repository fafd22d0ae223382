//! Synthesized demo tracks, so a newcomer without music can try everything.
//!
//! `bardcast --demo` writes these WAV files (44.1 kHz stereo, with RIFF INFO tags) into the
//! data folder once and uses that folder as the library.

use std::f32::consts::TAU;
use std::io::Write;
use std::path::Path;

/// Sample rate of the demo files in Hz (not 48 kHz, so playback exercises resampling).
const RATE: u32 = 44_100;

struct DemoTrack {
    file: &'static str,
    title: &'static str,
    /// Seconds.
    seconds: u32,
    render: fn(t: f32, noise: &mut Noise) -> (f32, f32),
}

const TRACKS: &[DemoTrack] = &[
    DemoTrack { file: "01 Tavern Jig.wav", title: "Tavern Jig", seconds: 40, render: tavern },
    DemoTrack { file: "02 Forest at Dusk.wav", title: "Forest at Dusk", seconds: 45, render: forest },
    DemoTrack { file: "03 Battle Drums.wav", title: "Battle Drums", seconds: 35, render: battle },
    DemoTrack { file: "04 Dungeon Drone.wav", title: "Dungeon Drone", seconds: 50, render: dungeon },
];

/// Writes the demo tracks into `dir` (skipping those already there).
pub fn write_demo_library(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for t in TRACKS {
        let path = dir.join(t.file);
        if path.exists() {
            continue;
        }
        let tmp = dir.join(format!(".{}.tmp", t.file));
        write_wav(&tmp, t)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

fn write_wav(path: &Path, track: &DemoTrack) -> std::io::Result<()> {
    let frames = RATE * track.seconds;
    let data_len = frames * 4;
    let info = info_chunk(&[("INAM", track.title), ("IART", "bardcast demo"), ("IPRD", "Demo Session")]);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"RIFF")?;
    out.write_all(&(4 + (8 + 16) + (8 + data_len) + info.len() as u32).to_le_bytes())?;
    out.write_all(b"WAVEfmt ")?;
    out.write_all(&16u32.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?; // PCM
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&RATE.to_le_bytes())?;
    out.write_all(&(RATE * 4).to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&16u16.to_le_bytes())?;
    out.write_all(b"data")?;
    out.write_all(&data_len.to_le_bytes())?;
    let mut noise = Noise(0x2545_F491_4F6C_DD1D);
    let fade = RATE as f32 * 0.5;
    for i in 0..frames {
        let t = i as f32 / RATE as f32;
        let (l, r) = (track.render)(t, &mut noise);
        let edge = (i as f32 / fade).min((frames - i) as f32 / fade).min(1.0);
        for v in [l, r] {
            let s = (v * edge).clamp(-1.0, 1.0) * 0.8 * i16::MAX as f32;
            out.write_all(&(s as i16).to_le_bytes())?;
        }
    }
    out.write_all(&info)?;
    out.flush()
}

fn info_chunk(tags: &[(&str, &str)]) -> Vec<u8> {
    let mut body = b"INFO".to_vec();
    for (id, text) in tags {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        body.extend_from_slice(&bytes);
    }
    let mut chunk = b"LIST".to_vec();
    chunk.extend_from_slice(&(body.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&body);
    chunk
}

/// xorshift64: deterministic noise in [-1, 1].
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn hz(semitones_from_a4: f32) -> f32 {
    440.0 * 2f32.powf(semitones_from_a4 / 12.0)
}

fn pluck(t: f32, f: f32) -> f32 {
    let env = (-t * 6.0).exp();
    env * ((TAU * f * t).sin() + 0.4 * (TAU * 2.0 * f * t).sin() + 0.2 * (TAU * 3.0 * f * t).sin())
}

fn tavern(t: f32, _: &mut Noise) -> (f32, f32) {
    const MELODY: [f32; 12] = [-7.0, -3.0, 0.0, 2.0, 0.0, -3.0, -5.0, -2.0, 2.0, 5.0, 2.0, -2.0];
    let beat = 60.0 / 150.0;
    let step = (t / beat) as usize;
    let local = t - step as f32 * beat;
    let note = pluck(local, hz(MELODY[step % MELODY.len()]));
    let bar = (t / (beat * 3.0)) as usize;
    let bass = 0.5 * pluck(t - bar as f32 * beat * 3.0, hz(if bar.is_multiple_of(2) { -19.0 } else { -14.0 }));
    (0.35 * note + 0.3 * bass, 0.25 * note + 0.35 * bass)
}

fn forest(t: f32, noise: &mut Noise) -> (f32, f32) {
    let wind = 0.08 * noise.next() * (0.6 + 0.4 * (TAU * 0.07 * t).sin());
    let chirp_at = t % 3.7;
    let chirp = if chirp_at < 0.18 {
        let f = 2600.0 + 1800.0 * chirp_at / 0.18;
        0.25 * (TAU * f * chirp_at).sin() * (1.0 - chirp_at / 0.18)
    } else {
        0.0
    };
    let pad = 0.12 * ((TAU * hz(-21.0) * t).sin() + (TAU * hz(-14.0) * t).sin());
    (wind + pad + chirp, wind * 0.9 + pad + chirp * 0.4)
}

fn battle(t: f32, noise: &mut Noise) -> (f32, f32) {
    let beat = 0.5;
    let local = t % beat;
    let kick = (-local * 18.0).exp() * (TAU * (55.0 + 90.0 * (-local * 30.0).exp()) * local).sin();
    let snare_at = (t + beat) % (2.0 * beat);
    let snare = if snare_at < 0.2 { 0.4 * noise.next() * (-snare_at * 20.0).exp() } else { 0.0 };
    let bass = 0.25 * (TAU * hz(-33.0) * t).sin().signum() * 0.5;
    (0.7 * kick + snare + bass, 0.7 * kick + 0.8 * snare + bass)
}

fn dungeon(t: f32, _: &mut Noise) -> (f32, f32) {
    let lfo = 0.5 + 0.5 * (TAU * 0.05 * t).sin();
    let root = (TAU * hz(-33.0) * t).sin() + 0.5 * (TAU * hz(-26.0) * t).sin();
    let shimmer = 0.15 * lfo * (TAU * hz(-9.0) * t).sin();
    (0.35 * root + shimmer, 0.35 * root - shimmer)
}
