//! Ambience layers, one-shots and ducking: the stage's voices beside the music, kept in the
//! timeline as plain data. Like every change, each takes effect at a grid part.

use serde::{Deserialize, Serialize};

use super::timeline::{Settle, Timeline, TrackRef, PART_MS};

/// Layers that may sound at once.
pub const MAX_LAYERS: usize = 8;
/// One-shots that may sound at once; a newer one cuts the oldest short.
pub const MAX_ONESHOTS: usize = 16;
/// A layer fades in and out over this long unless told otherwise, ms.
pub const DEFAULT_LAYER_FADE_MS: u32 = 2_000;
/// The longest layer fade a GM may ask for, ms.
pub const MAX_LAYER_FADE_MS: u32 = 30_000;
/// Ducking lowers music and ambience by this much unless told otherwise, dB.
pub const DEFAULT_DUCK_DB: f64 = -12.0;
/// Ducking and its release glide over this long, ms.
pub const DUCK_RAMP_MS: u32 = 300;
/// A one-shot cut short for a newer one fades out over this long, ms.
pub const ONESHOT_CUT_MS: u32 = 50;

/// An ambience loop under the music, from `start_part` until it is stopped; gapless.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub id: u64,
    pub track: TrackRef,
    /// The track's exact length, samples at 48 kHz: where the loop comes round.
    pub loop_samples: u64,
    pub start_part: u64,
    /// Fades in over this long, ms.
    pub fade_ms: u32,
    /// Its gain from a part on, gliding from the one before; the first holds from the start.
    pub gains: Vec<GainStep>,
    /// Fades out from here, then it is gone.
    pub stop: Option<LayerStop>,
}

/// A layer's gain (0..=1, linear) from `at_part` on, reached over `fade_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GainStep {
    pub at_part: u64,
    pub gain: f64,
    pub fade_ms: u32,
}

/// Where a layer starts fading out, and over how long (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStop {
    pub at_part: u64,
    pub fade_ms: u32,
}

/// A track played once on top of everything, never ducked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneShot {
    pub track: TrackRef,
    pub start_part: u64,
    /// 0..=1, linear.
    pub gain: f64,
    /// Cut short (over [`ONESHOT_CUT_MS`]) from this part to make room for a newer one.
    pub cut_at: Option<u64>,
    /// Fired before its loudness was known: it glides to its matched level once it is.
    #[serde(default)]
    pub settle: Option<Settle>,
}

/// Music and ambience are lowered by `db` from `at_part` on (0: not ducked).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DuckStep {
    pub at_part: u64,
    pub db: f64,
}

/// The calibration tick ([`crate::stage::tick`]) is on or off from `at_part` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickStep {
    pub at_part: u64,
    pub on: bool,
}

impl Layer {
    /// Whether the layer still plays at `part` (it may be fading out).
    pub fn active_at(&self, part: u64) -> bool {
        self.stop.is_none_or(|s| part < s.at_part)
    }

    /// The gain it is heading for.
    pub fn gain(&self) -> f64 {
        self.gains.last().map_or(1.0, |g| g.gain)
    }

    /// The first part after its fade-out.
    fn gone_at(&self) -> u64 {
        self.stop.map_or(u64::MAX, |s| s.at_part.saturating_add(u64::from(s.fade_ms).div_ceil(PART_MS) + 1))
    }
}

impl OneShot {
    /// The first part after it ended; `None` while its length is unknown.
    fn gone_at(&self) -> Option<u64> {
        let natural = self.track.parts.map(|n| self.start_part.saturating_add(n + 1));
        match (natural, self.cut_at) {
            (Some(n), Some(c)) => Some(n.min(c + 1)),
            (n, c) => n.or(c.map(|c| c + 1)),
        }
    }
}

impl Timeline {
    /// Layers playing (not fading out) at `part`.
    pub fn active_layers(&self, part: u64) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(move |l| l.active_at(part))
    }

    /// Adds a layer at `at`; its id. `None` when [`MAX_LAYERS`] already play.
    pub fn add_layer(&mut self, at: u64, track: TrackRef, loop_samples: u64, gain: f64, fade_ms: u32) -> Option<u64> {
        if self.active_layers(at).count() >= MAX_LAYERS {
            return None;
        }
        let id = self.next_layer_id;
        self.next_layer_id += 1;
        let track = self.leveled(track);
        self.layers.push(Layer {
            id,
            track,
            loop_samples,
            start_part: at,
            fade_ms,
            gains: vec![GainStep { at_part: at, gain, fade_ms: 0 }],
            stop: None,
        });
        self.changed_at_part = at;
        Some(id)
    }

    /// Glides layer `id` to `gain` from `at`; false when no such layer plays.
    pub fn set_layer_gain(&mut self, at: u64, id: u64, gain: f64, fade_ms: u32) -> bool {
        let Some(layer) = self.layers.iter_mut().find(|l| l.id == id && l.active_at(at)) else { return false };
        layer.gains.retain(|g| g.at_part < at);
        layer.gains.push(GainStep { at_part: at, gain, fade_ms });
        self.changed_at_part = at;
        true
    }

    /// Fades layer `id` out from `at`; false when no such layer plays.
    pub fn remove_layer(&mut self, at: u64, id: u64, fade_ms: u32) -> bool {
        let Some(layer) = self.layers.iter_mut().find(|l| l.id == id && l.active_at(at)) else { return false };
        if layer.start_part >= at {
            // Not heard yet: it simply goes.
            self.layers.retain(|l| l.id != id);
        } else {
            layer.stop = Some(LayerStop { at_part: at, fade_ms });
        }
        self.changed_at_part = at;
        true
    }

    /// Fades every layer out from `at`.
    pub fn clear_layers(&mut self, at: u64, fade_ms: u32) {
        let ids: Vec<u64> = self.active_layers(at).map(|l| l.id).collect();
        for id in ids {
            self.remove_layer(at, id, fade_ms);
        }
        self.changed_at_part = at;
    }

    /// Plays `track` once from `at`; the oldest one-shot still sounding gives way when
    /// [`MAX_ONESHOTS`] do.
    pub fn add_oneshot(&mut self, at: u64, track: TrackRef, gain: f64) {
        let mut sounding: Vec<&mut OneShot> =
            self.oneshots.iter_mut().filter(|o| o.gone_at().is_none_or(|g| g > at) && o.cut_at.is_none()).collect();
        if sounding.len() >= MAX_ONESHOTS {
            if let Some(oldest) = sounding.iter_mut().min_by_key(|o| o.start_part) {
                oldest.cut_at = Some(at);
            }
        }
        let track = self.leveled(track);
        self.oneshots.push(OneShot { track, start_part: at, gain, cut_at: None, settle: None });
        self.changed_at_part = at;
    }

    /// Ducks music and ambience by `db` from `at` (0: releases).
    pub fn duck(&mut self, at: u64, db: f64) {
        if self.duck_steps.is_empty() {
            // Not ducked before the first change.
            self.duck_steps.push(DuckStep { at_part: 0, db: 0.0 });
        }
        self.duck_steps.retain(|d| d.at_part < at);
        self.duck_steps.push(DuckStep { at_part: at, db });
        self.changed_at_part = at;
    }

    /// How far music and ambience are ducked at `part`, dB (0: not).
    pub fn ducked_db(&self, part: u64) -> f64 {
        self.duck_steps.iter().rev().find(|d| d.at_part <= part).map_or(0.0, |d| d.db)
    }

    /// Turns the calibration tick on or off from `at`.
    pub fn set_tick(&mut self, at: u64, on: bool) {
        self.tick_steps.retain(|t| t.at_part < at);
        self.tick_steps.push(TickStep { at_part: at, on });
        self.changed_at_part = at;
    }

    /// Whether the calibration tick is on at `part`.
    pub fn ticking(&self, part: u64) -> bool {
        self.tick_steps.iter().rev().find(|t| t.at_part <= part).is_some_and(|t| t.on)
    }

    /// Forgets layers and one-shots that ended before `part`, and duck and tick steps no
    /// longer in effect.
    pub(super) fn forget_ambience_before(&mut self, part: u64) {
        self.layers.retain(|l| l.gone_at() > part);
        self.oneshots.retain(|o| o.gone_at().is_none_or(|g| g > part));
        let in_effect = self.duck_steps.partition_point(|d| d.at_part <= part);
        self.duck_steps.drain(..in_effect.saturating_sub(1));
        let in_effect = self.tick_steps.partition_point(|t| t.at_part <= part);
        self.tick_steps.drain(..in_effect.saturating_sub(1));
    }

    /// Checks the ambience of a saved timeline.
    pub(super) fn validate_ambience(&self) -> Result<(), String> {
        let gains = self.layers.iter().flat_map(|l| &l.gains).map(|g| g.gain);
        if gains.chain(self.oneshots.iter().map(|o| o.gain)).any(|g| !(0.0..=1.0).contains(&g)) {
            return Err("a layer or one-shot gain is not between 0 and 1".into());
        }
        if self.duck_steps.iter().any(|d| !(-60.0..=0.0).contains(&d.db)) {
            return Err("a duck level is not between -60 and 0 dB".into());
        }
        if self.layers.iter().any(|l| l.id >= self.next_layer_id) {
            return Err("a layer id is not below the next id".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TrackId;

    fn track(id: i64, parts: u64) -> TrackRef {
        TrackRef {
            id: TrackId(id),
            fingerprint: format!("f{id}"),
            relpath: vec![],
            parts: Some(parts),
            samples: None,
            duration_ms: 0,
            loudness_lufs: None,
            gain_db: 0.0,
        }
    }

    #[test]
    fn at_most_eight_layers_and_a_removed_one_fades_then_goes() {
        let mut t = Timeline::default();
        for i in 0..8 {
            assert!(t.add_layer(10, track(i, 20), 48_000, 0.5, 2000).is_some());
        }
        assert_eq!(t.add_layer(10, track(9, 20), 48_000, 0.5, 2000), None);
        assert!(t.remove_layer(20, 0, 1000));
        assert!(!t.remove_layer(21, 0, 1000), "it is already going");
        assert_eq!(t.active_layers(21).count(), 7);
        assert!(t.add_layer(21, track(9, 20), 48_000, 0.5, 2000).is_some());
        t.forget_ambience_before(22);
        assert_eq!(t.layers.len(), 9, "still fading out");
        t.forget_ambience_before(30);
        assert_eq!(t.layers.len(), 8);
    }

    #[test]
    fn the_seventeenth_one_shot_cuts_the_oldest() {
        let mut t = Timeline::default();
        for i in 0..16 {
            t.add_oneshot(10 + i, track(i as i64, 100), 1.0);
        }
        assert!(t.oneshots.iter().all(|o| o.cut_at.is_none()));
        t.add_oneshot(40, track(99, 100), 1.0);
        assert_eq!(t.oneshots[0].cut_at, Some(40));
        assert_eq!(t.oneshots.iter().filter(|o| o.cut_at.is_some()).count(), 1);
    }

    #[test]
    fn ducking_holds_until_released() {
        let mut t = Timeline::default();
        t.duck(10, -12.0);
        t.duck(20, 0.0);
        assert_eq!((t.ducked_db(9), t.ducked_db(15), t.ducked_db(25)), (0.0, -12.0, 0.0));
    }

    #[test]
    fn the_tick_holds_until_turned_off_and_its_history_is_kept_while_in_effect() {
        let mut t = Timeline::default();
        t.set_tick(10, true);
        t.set_tick(20, false);
        assert_eq!((t.ticking(9), t.ticking(15), t.ticking(25)), (false, true, false));
        t.forget_ambience_before(15);
        assert_eq!(t.tick_steps.len(), 2, "the step in effect at 15 is kept");
        t.forget_ambience_before(25);
        assert_eq!(t.tick_steps, vec![TickStep { at_part: 20, on: false }]);
        // A later command replaces one not yet in effect.
        t.set_tick(30, true);
        t.set_tick(30, false);
        assert!(!t.ticking(31));
    }
}
