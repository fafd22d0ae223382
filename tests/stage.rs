//! The stage, heard: the real server plays synthetic tones of known frequency and level,
//! the parts it published are decoded with ffmpeg, and the crossfade, the GM volume and
//! the pause ramp are measured in the audio, to the sample, against each command's
//! `effectiveAt`.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::f64::consts::PI;
use std::time::Duration;

use common::{Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// Samples per second and per part.
const RATE: f64 = 48_000.0;
const PART_SAMPLES: u64 = 24_576;
/// A change is heard this many samples after its part starts (the encoder's look-ahead).
const CHANGE_DELAY: u64 = bardcast::stage::CHANGE_DELAY_SAMPLES;
/// Each tone's amplitude (full scale 1.0).
const LEVEL: f64 = 0.5;

async fn command(s: &Server, name: &str, body: Value) -> Value {
    let (st, v) = s.gm_json(Method::POST, &format!("/api/session/{name}"), body).await;
    assert_eq!(st, 200, "{name}: {v}");
    v
}

/// A server whose library holds sines given as (file, Hz, amplitude, seconds); their
/// track ids in that order.
async fn tones(name: &str, tones: &[(&str, u32, f64, f64)]) -> (Server, Vec<i64>) {
    tones_with(name, tones, Options::default()).await
}

/// [`tones`], with the server started with `options`.
async fn tones_with(name: &str, tones: &[(&str, u32, f64, f64)], options: Options) -> (Server, Vec<i64>) {
    let dir = common::temp_dir(name);
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    for (file, freq, level, seconds) in tones {
        let wave = format!("{level}*sin(2*PI*{freq}*t)");
        let expr = format!("aevalsrc={wave}|{wave}:s=48000:d={seconds}");
        common::ffmpeg(&["-f", "lavfi", "-i", &expr, music.join(file).to_str().unwrap()]);
    }
    let s = Server::start_in(&dir, &music, options);
    s.wait_scan_idle().await;
    let page = s.get_json("/api/tracks?sort=filepath").await;
    let ids: Vec<i64> = page["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), tones.len());
    (s, ids)
}

/// A 440 Hz and a 660 Hz sine of amplitude [`LEVEL`], 30 s each.
async fn two_tones(name: &str) -> (Server, i64, i64) {
    let (s, ids) = tones(name, &[("a.flac", 440, LEVEL, 30.0), ("b.flac", 660, LEVEL, 30.0)]).await;
    (s, ids[0], ids[1])
}

/// Saves a scene; its id.
async fn new_scene(s: &Server, spec: Value) -> i64 {
    let (st, v) = s.gm_json(Method::POST, "/api/scenes", spec).await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_i64().unwrap()
}

/// Waits until grid part `part` is published, then writes parts `from..=to` of the 256k
/// rendition, as published, after its init segment: an MP4 file any decoder reads.
async fn published(s: &Server, from: u64, to: u64) -> std::path::PathBuf {
    while now_ms() < (to + 1) * 512 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut mp4 = s.get("/hls/256k/init.mp4").await.bytes().await.unwrap().to_vec();
    for part in from..=to {
        let r = s.get(&format!("/hls/256k/part/{part}.m4s")).await;
        assert_eq!(r.status(), 200, "part {part}");
        mp4.extend_from_slice(&r.bytes().await.unwrap());
    }
    let file = common::temp_dir("stage-decode").join("parts.mp4");
    std::fs::write(&file, &mp4).unwrap();
    file
}

/// Parts `from..=to` as published, decoded with ffmpeg: left channel, sample 0 = grid
/// sample `from × 24576`.
async fn decode_parts(s: &Server, from: u64, to: u64) -> Vec<f64> {
    let file = published(s, from, to).await;
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i", file.to_str().unwrap(), "-f", "s16le", "-ac", "2", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    let left: Vec<f64> =
        out.stdout.chunks_exact(4).map(|lr| f64::from(i16::from_le_bytes([lr[0], lr[1]])) / 32_768.0).collect();
    assert_eq!(left.len() as u64, (to - from + 1) * PART_SAMPLES, "ffmpeg decoded every sample of every part");
    left
}

/// The true peak of parts `from..=to` as published, dBTP, as ffmpeg's EBU R128 meter
/// measures it (4× oversampled).
async fn true_peak_db(s: &Server, from: u64, to: u64) -> f64 {
    let file = published(s, from, to).await;
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i", file.to_str().unwrap(), "-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg: {log}");
    let summary = &log[log.rfind("True peak:").unwrap_or_else(|| panic!("no true peak in {log}"))..];
    let line = summary.lines().find(|l| l.trim_start().starts_with("Peak:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The amplitude of the `freq` Hz component over `len` samples from `at` (Goertzel).
fn tone(pcm: &[f64], at: usize, len: usize, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / RATE;
    let (mut re, mut im) = (0.0, 0.0);
    for (i, x) in pcm[at..at + len].iter().enumerate() {
        re += x * (w * i as f64).cos();
        im -= x * (w * i as f64).sin();
    }
    2.0 * (re * re + im * im).sqrt() / len as f64
}

/// [`tone`] through a Hann window, so a strong tone elsewhere in the spectrum does not leak
/// into the bin: a steady sine of amplitude A still reads A.
fn windowed_tone(pcm: &[f64], at: usize, len: usize, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / RATE;
    let (mut re, mut im, mut sum) = (0.0, 0.0, 0.0);
    for (i, x) in pcm[at..at + len].iter().enumerate() {
        let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / len as f64).cos();
        re += hann * x * (w * i as f64).cos();
        im -= hann * x * (w * i as f64).sin();
        sum += hann;
    }
    2.0 * (re * re + im * im).sqrt() / sum
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// The largest step between neighbouring samples, and where.
fn largest_step(pcm: &[f64]) -> (usize, f64) {
    pcm.windows(2).map(|w| (w[1] - w[0]).abs()).enumerate().fold((0, 0.0), |m, x| if x.1 > m.1 { x } else { m })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossfade_volume_and_pause_are_heard_at_their_effective_time() {
    let (s, a, b) = two_tones("stage-heard").await;
    // Each tone at its own level: matching loudness is another test's subject.
    command(&s, "settings", json!({"crossfadeSeconds": 2, "normalize": false})).await;
    let played = command(&s, "play", json!({"trackId": a})).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let crossfade = command(&s, "play", json!({"trackId": b})).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let volume = command(&s, "volume", json!({"volume": 0.5})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paused = command(&s, "pause", json!({})).await;
    let part = |v: &Value| v["effectiveAtMs"].as_u64().unwrap() / 512;
    let first = part(&played) + 1;
    let pcm = decode_parts(&s, first, part(&paused) + 2).await;
    // Where each change is heard, as an index into `pcm`.
    let heard = |v: &Value| ((part(v) - first) * PART_SAMPLES + CHANGE_DELAY) as usize;
    let win = 2_400; // 50 ms

    // Before the crossfade: the first tone alone, at its level.
    let x = heard(&crossfade);
    assert!(x > 3 * win, "the crossfade came too early to measure");
    let before = x - 2 * win;
    assert!(db(tone(&pcm, before, win, 440.0) / LEVEL).abs() < 0.5);
    assert!(tone(&pcm, before, win, 660.0) < 0.005);

    // The crossfade: equal power all through, half way both at -3 dB, then the second alone.
    for k in 0..40 {
        let at = x + k * win;
        let (out, into) = (tone(&pcm, at, win, 440.0), tone(&pcm, at, win, 660.0));
        let power = (out * out + into * into).sqrt();
        assert!(db(power / LEVEL).abs() < 0.6, "{k}: power {:.2} dB off", db(power / LEVEL));
    }
    let mid = x + 48_000 - win / 2;
    assert!(db(tone(&pcm, mid, win, 440.0) / LEVEL) + 3.0 < 0.7);
    assert!(db(tone(&pcm, mid, win, 660.0) / LEVEL) + 3.0 < 0.7);
    let after = x + 2 * 48_000 + win;
    assert!(tone(&pcm, after, win, 440.0) < 0.005, "the first tone is gone after 2 s");
    assert!(db(tone(&pcm, after, win, 660.0) / LEVEL).abs() < 0.5);

    // The GM volume, in the stream: 6 dB down 250 ms after it is heard, not before.
    let v = heard(&volume);
    assert!(db(tone(&pcm, v - win, win, 660.0) / LEVEL).abs() < 0.5);
    assert!((db(tone(&pcm, v + 12_000, win, 660.0) / LEVEL) + 6.02).abs() < 0.5);

    // The pause ramps down over 250 ms: half way it is still heard, then silence.
    let p = heard(&paused);
    let level = LEVEL / 2.0;
    assert!(db(tone(&pcm, p - win, win, 660.0) / level).abs() < 0.5);
    let ramp = tone(&pcm, p + 4_800, win, 660.0) / level;
    assert!((0.3..0.9).contains(&ramp), "125 ms into the ramp the level is {ramp:.2} of before");
    let rest = &pcm[p + 12_000..];
    let peak = rest.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(peak < 0.001, "silence after the pause, peak {peak}");

    // No click anywhere, part seams included: no step larger than the 660 Hz tone's slope.
    let slope = 2.0 * PI * 660.0 / RATE * LEVEL;
    let (at, step) =
        pcm.windows(2).map(|w| (w[1] - w[0]).abs()).enumerate().fold((0, 0.0), |m, x| if x.1 > m.1 { x } else { m });
    assert!(step < 1.3 * slope, "a step of {step:.3} at sample {at} (part {})", first + at as u64 / PART_SAMPLES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambience_loops_gaplessly_effects_play_on_top_and_ducking_spares_them() {
    // Music 440 Hz at 0.3; a 1.5 s ambience loop of 880 Hz at 0.2 (a whole number of cycles,
    // 72 000 samples: not a whole number of AAC frames); a 0.5 s effect of 1320 Hz at 0.3.
    let (s, ids) = tones(
        "stage-layers",
        &[("a music.flac", 440, 0.3, 30.0), ("b rain.flac", 880, 0.2, 1.5), ("c door.flac", 1320, 0.3, 0.5)],
    )
    .await;
    let (music, rain, door) = (ids[0], ids[1], ids[2]);
    command(&s, "settings", json!({"normalize": false})).await;
    command(&s, "play", json!({"trackId": music})).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let added = command(&s, "layer", json!({"action": "add", "trackId": rain, "fadeSeconds": 0.5})).await;
    let layer = &added["layers"][0];
    assert_eq!((layer["trackId"].as_i64(), layer["gain"].as_f64()), (Some(rain), Some(1.0)), "{added}");
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let ducked = command(&s, "duck", json!({"on": true})).await;
    assert_eq!(ducked["duckDb"], -12.0);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let shot = command(&s, "oneshot", json!({"trackId": door})).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let released = command(&s, "duck", json!({"on": false})).await;
    assert!(released["duckDb"].is_null());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let id = layer["id"].as_u64().unwrap();
    let removed = command(&s, "layer", json!({"action": "remove", "layerId": id, "fadeSeconds": 1})).await;
    assert_eq!(removed["layers"], json!([]));

    let part = |v: &Value| v["effectiveAtMs"].as_u64().unwrap() / 512;
    let first = part(&added);
    let pcm = decode_parts(&s, first, part(&removed) + 3).await;
    let heard = |v: &Value| ((part(v) - first) * PART_SAMPLES + CHANGE_DELAY) as usize;
    let win = 2_400;
    let level = |at: usize, freq: f64| tone(&pcm, at, win, freq);

    // The loop, after its fade-in, until the duck: at its level in every window, across
    // at least two loop points (every 72 000 samples from where it is heard).
    let (a, d) = (heard(&added), heard(&ducked));
    assert!(d - a > 3 * 72_000, "too few loops to judge");
    for at in (a + 24_000 + win..d - win).step_by(win / 2) {
        assert!(db(level(at, 880.0) / 0.2).abs() < 0.5, "the loop dips at {}: {:.3}", at - a, level(at, 880.0));
        assert!(db(level(at, 440.0) / 0.3).abs() < 0.5);
    }
    // No click at the loop points: no step beyond the sum's steepest slope.
    let slope = 2.0 * PI * (440.0 * 0.3 + 880.0 * 0.2) / RATE;
    for k in 1..=3 {
        let seam = a + k * 72_000;
        let (at, step) = largest_step(&pcm[seam - 480..seam + 480]);
        assert!(step < 1.3 * slope, "loop point {k}: a step of {step:.4} at {at} of 960");
    }

    // Ducking: music and ambience 12 dB down after 300 ms; the effect, fired while ducked,
    // is not; it starts where it is heard.
    for (freq, full) in [(440.0, 0.3), (880.0, 0.2)] {
        assert!((db(level(d + 14_400 + win, freq) / full) + 12.0).abs() < 0.5, "{freq} Hz ducked");
    }
    let o = heard(&shot);
    assert!(level(o - win, 1320.0) < 0.003, "the effect is not heard before it is due");
    assert!(db(level(o + 1_200, 1320.0) / 0.3).abs() < 0.5, "the effect at its own level");
    assert!(level(o + 24_000 + win, 1320.0) < 0.003, "the effect played once");
    let r = heard(&released);
    assert!(db(level(r + 14_400 + win, 440.0) / 0.3).abs() < 0.5, "released");

    // Removing the layer fades it out over 1 s; the music stays.
    let gone = heard(&removed);
    let half = level(gone + 24_000 - win / 2, 880.0) / 0.2;
    assert!((0.55..0.85).contains(&half), "half way through its fade-out the layer is at {half:.2}");
    assert!(level(gone + 48_000 + win, 880.0) < 0.003);
    assert!(db(level(gone + 48_000 + win, 440.0) / 0.3).abs() < 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_switch_is_heard_as_one_change_and_a_pad_fires_on_time() {
    // Calm 440 Hz and battle 660 Hz music at 0.3; wind 880, fire 1100 and rain 1540 Hz loops
    // at 0.2 (whole numbers of cycles); a 0.5 s thunder of 1760 Hz at 0.3 on a pad.
    let (s, ids) = tones(
        "stage-scenes",
        &[
            ("a calm.flac", 440, 0.3, 30.0),
            ("b battle.flac", 660, 0.3, 30.0),
            ("c wind.flac", 880, 0.2, 1.5),
            ("d fire.flac", 1100, 0.2, 2.0),
            ("e rain.flac", 1540, 0.2, 1.5),
            ("f thunder.flac", 1760, 0.3, 0.5),
        ],
    )
    .await;
    let (calm, battle, wind, fire, rain, thunder) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
    command(&s, "settings", json!({"normalize": false})).await;
    let camp = new_scene(
        &s,
        json!({"name": "Camp", "music": {"trackId": calm},
        "layers": [{"trackId": wind}, {"trackId": fire}]}),
    )
    .await;
    let storm = new_scene(
        &s,
        json!({"name": "Storm", "music": {"trackId": battle}, "crossfadeSeconds": 2,
        "layers": [{"trackId": wind, "gain": 0.5}, {"trackId": rain}],
        "pads": [{"trackId": thunder, "key": "t"}]}),
    )
    .await;
    command(&s, "scene", json!({"sceneId": camp})).await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let switched = command(&s, "scene", json!({"sceneId": storm})).await;
    assert_eq!(switched["scene"]["name"], "Storm");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let fired = command(&s, "pad", json!({"key": "t"})).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let part = |v: &Value| v["effectiveAtMs"].as_u64().unwrap() / 512;
    let first = part(&switched) - 4;
    let pcm = decode_parts(&s, first, part(&fired) + 2).await;
    let heard = |v: &Value| ((part(v) - first) * PART_SAMPLES + CHANGE_DELAY) as usize;
    let win = 2_400;
    let level = |at: usize, freq: f64| tone(&pcm, at, win, freq);
    let near = |got: f64, want: f64| db(got / want).abs() < 0.5;

    // Before the switch: Camp alone.
    let sw = heard(&switched);
    let before = sw - win;
    for (freq, want) in [(440.0, 0.3), (880.0, 0.2), (1100.0, 0.2)] {
        assert!(near(level(before, freq), want), "{freq} Hz before the switch: {:.3}", level(before, freq));
    }
    assert!(level(before, 660.0) < 0.003 && level(before, 1540.0) < 0.003, "Storm is not heard before it is due");
    // Everything changes from the one effective part: half way through the 2 s crossfade both
    // tunes sound at equal power; the shared wind glides, fire fades out and rain fades in.
    let mid = sw + 48_000 - win / 2;
    let (out, into) = (level(mid, 440.0), level(mid, 660.0));
    assert!(out > 0.1 && into > 0.1, "both tunes mid-crossfade: {out:.3} {into:.3}");
    assert!(db((out * out + into * into).sqrt() / 0.3).abs() < 1.0, "equal power: {out:.3} {into:.3}");
    let fire_mid = level(mid, 1100.0) / 0.2;
    assert!((0.2..0.9).contains(&fire_mid), "fire half way out: {fire_mid:.2}");
    let rain_mid = level(mid, 1540.0) / 0.2;
    assert!((0.2..0.9).contains(&rain_mid), "rain half way in: {rain_mid:.2}");
    // The wind never stops: from the switch to its new gain it stays between the two.
    for at in (sw - win..sw + 96_000).step_by(win / 2) {
        let w = level(at, 880.0);
        assert!((0.097..0.206).contains(&w), "the shared wind at {}: {w:.3}", at as i64 - sw as i64);
    }
    let after = sw + 96_000 + win;
    for (freq, want) in [(660.0, 0.3), (880.0, 0.1), (1540.0, 0.2)] {
        assert!(near(level(after, freq), want), "{freq} Hz after the switch: {:.3}", level(after, freq));
    }
    assert!(level(after, 440.0) < 0.003 && level(after, 1100.0) < 0.003, "Camp's tune and fire are gone");

    // The pad's thunder starts where its command is heard, at its level, on top.
    let o = heard(&fired);
    assert!(level(o - win, 1760.0) < 0.003, "no thunder before it is due");
    assert!(near(level(o + 1_200, 1760.0), 0.3), "thunder at its level: {:.3}", level(o + 1_200, 1760.0));
    assert!(near(level(o + 1_200, 660.0), 0.3), "the music is not ducked by a pad");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracks_are_matched_in_loudness_unless_the_room_says_not() {
    // A sine of amplitude A in both channels measures -0.69 + 20 log10(A) LUFS (EBU R128;
    // K-weighting is flat within 0.1 dB at these frequencies): -6.7 and -20.7 here.
    let (s, ids) = tones("stage-loudness", &[("a loud.flac", 440, 0.5, 20.0), ("b quiet.flac", 660, 0.1, 20.0)]).await;
    // The library shows each track's loudness once it is encoded (kept in SQLite).
    let (st, v) = s.gm_json(Method::POST, "/api/cache/prepare", json!({})).await;
    assert!((200..300).contains(&st), "{v}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let measured = loop {
        let page = s.get_json("/api/tracks?sort=filepath").await;
        let lufs: Vec<Option<f64>> =
            page["items"].as_array().unwrap().iter().map(|t| t["loudnessLufs"].as_f64()).collect();
        if lufs.iter().all(Option::is_some) {
            break lufs.into_iter().flatten().collect::<Vec<f64>>();
        }
        assert!(std::time::Instant::now() < deadline, "no loudness in {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (got, level) in measured.iter().zip([0.5f64, 0.1]) {
        let want = -0.691 + 20.0 * level.log10();
        assert!((got - want).abs() < 0.5, "measured {got:.2} LUFS, want {want:.2}");
    }

    let settings = command(&s, "settings", json!({"crossfadeSeconds": 0})).await;
    assert_eq!((settings["normalize"].as_bool(), settings["targetLufs"].as_f64()), (Some(true), Some(-18.0)));
    let loud = command(&s, "play", json!({"trackId": ids[0]})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let quiet = command(&s, "play", json!({"trackId": ids[1]})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    command(&s, "settings", json!({"normalize": false})).await;
    let raw = command(&s, "play", json!({"trackId": ids[0]})).await;
    let part = |v: &Value| v["effectiveAtMs"].as_u64().unwrap() / 512;
    let first = part(&loud);
    let pcm = decode_parts(&s, first, part(&raw) + 2).await;
    let heard = |v: &Value| ((part(v) - first) * PART_SAMPLES + CHANGE_DELAY) as usize;
    let win = 2_400;
    // Both at the amplitude that measures -18 LUFS; the loud one at its own level once the
    // room stops matching.
    let target = 10f64.powf((-18.0 + 0.691) / 20.0);
    let a = tone(&pcm, heard(&quiet) - 2 * win, win, 440.0);
    let b = tone(&pcm, heard(&raw) - 2 * win, win, 660.0);
    assert!(db(a / target).abs() < 0.5 && db(b / target).abs() < 0.5, "{a:.4} and {b:.4}, want {target:.4}");
    assert!(db(tone(&pcm, heard(&raw) + 12_000, win, 440.0) / 0.5).abs() < 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_full_scale_layers_stay_under_minus_one_dbtp() {
    // Eight sines at full scale, unmatched in loudness: they sum to about 8× full scale, and
    // the 11 025 Hz one (a quarter of 44.1 kHz, off the 48 kHz grid) peaks between samples.
    let freqs = [220, 331, 497, 1_009, 2_203, 4_409, 7_001, 11_025];
    let files: Vec<(String, u32)> = freqs.iter().enumerate().map(|(i, &f)| (format!("{i} layer.flac"), f)).collect();
    let specs: Vec<(&str, u32, f64, f64)> = files.iter().map(|(name, f)| (name.as_str(), *f, 0.999, 4.0)).collect();
    let (s, ids) = tones("stage-peak", &specs).await;
    command(&s, "settings", json!({"normalize": false})).await;
    let mut last = Value::Null;
    for id in &ids {
        last = command(&s, "layer", json!({"action": "add", "trackId": id, "fadeSeconds": 0})).await;
    }
    assert_eq!(last["layers"].as_array().unwrap().len(), 8);
    let ninth = s.gm_json(Method::POST, "/api/session/layer", json!({"action": "add", "trackId": ids[0]})).await;
    assert_eq!(ninth.0, 409, "a ninth layer: {}", ninth.1);
    let from = last["effectiveAtMs"].as_u64().unwrap() / 512 + 1;
    let peak = true_peak_db(&s, from, from + 11).await;
    assert!(peak < -1.0, "true peak {peak:.2} dBTP");
    // Limited, not silenced: the loudest moments are within 2 dB of the ceiling.
    assert!(peak > -3.0, "true peak {peak:.2} dBTP");
    let pcm = decode_parts(&s, from, from + 11).await;
    assert!(db(tone(&pcm, 48_000, 9_600, 220.0)) > -30.0, "every layer is still heard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_parts_keep_their_bytes_across_a_kill_and_a_restart() {
    let options = Options { extra_env: vec![("BITRATES".into(), "256,96".into())], ..Options::default() };
    let specs = [("a.flac", 440, LEVEL, 30.0), ("b.flac", 880, 0.2, 3.0)];
    let (mut s, ids) = tones_with("stage-restart", &specs, options.clone()).await;
    let played = command(&s, "play", json!({"trackId": ids[0]})).await;
    command(&s, "layer", json!({"action": "add", "trackId": ids[1]})).await;
    let first = played["effectiveAtMs"].as_u64().unwrap() / 512;
    let parts: Vec<(String, u64)> =
        ["256k", "96k"].iter().flat_map(|r| (first..first + 8).map(move |p| ((*r).to_owned(), p))).collect();
    while now_ms() < (first + 9) * 512 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fetch_all = |s: &Server| {
        let (base, parts) = (s.base.clone(), parts.clone());
        async move {
            let client = reqwest::Client::new();
            let mut all = Vec::new();
            for (r, p) in parts {
                let resp = client.get(format!("{base}/hls/{r}/part/{p}.m4s")).send().await.unwrap();
                assert_eq!(resp.status(), 200, "{r} part {p}");
                all.push(resp.bytes().await.unwrap());
            }
            all
        }
    };
    let before = fetch_all(&s).await;
    assert_eq!(fetch_all(&s).await, before, "fetched twice");
    s.kill9();
    // Now the room cannot render those parts as it did: the tracks' cached parts are evicted
    // and their files are gone. What was published is still what is served.
    let cache = s.dir.join("data/cache");
    for ladder in std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()) {
        if ladder.file_name().unwrap().to_string_lossy().starts_with("aaclc-") {
            std::fs::remove_dir_all(&ladder).unwrap();
        }
    }
    for (file, ..) in specs {
        std::fs::remove_file(s.music.join(file)).unwrap();
    }
    let again = Server::start_in(&s.dir.clone(), &s.music.clone(), options);
    let after = fetch_all(&again).await;
    for (i, (got, want)) in after.iter().zip(&before).enumerate() {
        assert!(got == want, "{} part {} changed across the restart", parts[i].0, parts[i].1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_track_comes_round_without_a_gap_or_a_click() {
    // 1.3 s of 440 Hz: 572 whole cycles, 62 400 samples, 2.54 parts (so each pass ends
    // inside a part, and the next comes round there rather than on the part after).
    // Decoded: 6.6 s, five passes.
    let (s, ids) = tones("stage-repeat", &[("a.flac", 440, LEVEL, 1.3)]).await;
    command(&s, "repeat", json!({"mode": "one"})).await;
    let played = command(&s, "play", json!({"trackId": ids[0]})).await;
    let first = played["effectiveAtMs"].as_u64().unwrap() / 512;
    let pcm = decode_parts(&s, first, first + 12).await;
    let begins = CHANGE_DELAY as usize;
    let win = 1_200;
    // The track was not encoded when it started, so it plays at its own level until its
    // loudness is measured, then glides to the room's target (-18 LUFS). Never below that:
    // no gap at any of the four loop points.
    let target = 10f64.powf((-18.0 + 0.691) / 20.0);
    for at in (begins + 14_400..pcm.len() - win).step_by(win / 2) {
        let level = tone(&pcm, at, win, 440.0);
        let pass_at = (at - begins) % 62_400;
        assert!(db(level / target) > -0.5 && db(level / LEVEL) < 0.5, "{level:.3} at {pass_at} into a pass");
    }
    let settled = tone(&pcm, pcm.len() - 48_000, 48_000, 440.0);
    assert!(db(settled / target).abs() < 0.5, "it settles at the matched level: {settled:.3}, want {target:.3}");
    let slope = 2.0 * PI * 440.0 / RATE * LEVEL;
    for k in 1..=4 {
        let seam = begins + k * 62_400;
        let (at, step) = largest_step(&pcm[seam - 480..seam + 480]);
        assert!(step < 1.3 * slope, "loop point {k}: a step of {step:.4} at {at} of 960");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_fired_before_its_track_was_measured_settles_to_the_matched_level() {
    let (s, ids) = tones("stage-oneshot-settle", &[("boom.flac", 440, 0.5, 20.0)]).await;
    let track = s.get_json(&format!("/api/tracks/{}", ids[0])).await;
    assert!(track["loudnessLufs"].is_null(), "not measured before it is fired: {track}");
    let fired = command(&s, "oneshot", json!({"trackId": ids[0]})).await;
    let first = fired["effectiveAtMs"].as_u64().unwrap() / 512;
    // Measured by its first encode (a second or so in a debug build); it then glides over
    // SETTLE_MS to the level of -18 LUFS, and keeps it.
    let pcm = decode_parts(&s, first, first + 16).await;
    let target = 10f64.powf((-18.0 + 0.691) / 20.0);
    let win = 2_400;
    for at in [12 * PART_SAMPLES as usize, 16 * PART_SAMPLES as usize] {
        let level = tone(&pcm, at, win, 440.0);
        assert!(db(level / target).abs() < 0.5, "{level:.4} at sample {at}, want {target:.4}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calibration_tick_clicks_on_every_whole_second_over_silence_and_over_the_music() {
    use bardcast::stage::tick::{CLICK_HZ, CLICK_LEVEL, CLICK_SAMPLES, SECOND_SAMPLES};
    let (s, ids) = tones("stage-tick", &[("a.flac", 440, 0.3, 30.0)]).await;
    command(&s, "settings", json!({"normalize": false})).await;
    let on = command(&s, "tick", json!({"on": true})).await;
    assert_eq!(on["tick"], true, "{on}");
    assert_eq!(s.get_json("/api/session").await["tick"], true);
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let play = command(&s, "play", json!({"trackId": ids[0]})).await;
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let off = command(&s, "tick", json!({"on": false})).await;
    assert_eq!(off["tick"], false, "{off}");

    let part = |v: &Value| v["effectiveAtMs"].as_u64().unwrap() / 512;
    let (first, last) = (part(&on), part(&off) + 5);
    let pcm = decode_parts(&s, first, last).await;
    let origin = first * PART_SAMPLES;
    let heard = |v: &Value| part(v) * PART_SAMPLES + CHANGE_DELAY;
    // Every whole second in the window: a click where the tick was on, none elsewhere.
    let mut clicks = 0;
    for second in origin.div_ceil(SECOND_SAMPLES)..(last + 1) * PART_SAMPLES / SECOND_SAMPLES {
        let c = (second * SECOND_SAMPLES - origin) as usize;
        if c < 1_000 || c + 1_000 > pcm.len() {
            continue;
        }
        let at = |offset: i64| tone(&pcm, (c as i64 + offset) as usize, CLICK_SAMPLES as usize, f64::from(CLICK_HZ));
        let expected = (heard(&on)..heard(&off)).contains(&(second * SECOND_SAMPLES));
        if !expected {
            // Windowed: over 5 ms a rectangular 2 kHz bin catches up to ~0.012 of the 0.3
            // music tone, depending on its phase; this reads 0.00003 there and 0.125 over a click.
            let band = windowed_tone(&pcm, c - CLICK_SAMPLES as usize, 2 * CLICK_SAMPLES as usize, f64::from(CLICK_HZ));
            assert!(band < 0.01, "no click at second {second} while the tick is off: {band:.4}");
            continue;
        }
        clicks += 1;
        // A Hann-windowed burst: its 2 kHz amplitude over the click is half its peak, and it
        // is largest exactly where the click is due.
        assert!(
            (at(0) / (f64::from(CLICK_LEVEL) / 2.0) - 1.0).abs() < 0.15,
            "the click of second {second}: {:.3}",
            at(0)
        );
        let onset = (-96..=96).step_by(4).max_by(|&a, &b| at(a).total_cmp(&at(b))).unwrap();
        // (The encoder smears a 5 ms burst a little; a millisecond is far finer than a listener hears.)
        assert!(onset.abs() <= 48, "the click of second {second} is {onset} samples off its second");
        assert!(
            [c - CLICK_SAMPLES as usize - 48, c + CLICK_SAMPLES as usize + 48].iter().all(|&from| windowed_tone(
                &pcm,
                from,
                CLICK_SAMPLES as usize,
                f64::from(CLICK_HZ)
            ) < 0.02),
            "second {second}: a click, not a tone"
        );
    }
    assert!(clicks >= 5, "{clicks} clicks heard");
    // The music plays on under the clicks, at its own level.
    let music = (heard(&play) + 24_000 - origin) as usize;
    for at in (music..music + 48_000).step_by(4_800) {
        let level = tone(&pcm, at, 2_400, 440.0);
        assert!(db(level / 0.3).abs() < 0.5, "the music under the tick: {level:.3}");
    }
}
