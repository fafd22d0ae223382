//! The GM key and the guard against guessing it.
//!
//! A client address that sends more than [`MAX_FAILURES`] wrong keys within
//! [`FAILURE_WINDOW`] is refused (`429 Too Many Requests` with `Retry-After`) until the
//! window has passed, without its keys being checked, so guessing runs at ten tries a
//! minute at most. Both the REST API and the control socket's GM `hello` go through
//! [`GmKey::check`]. Time comes in as an argument, so the rules are tested without a clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wrong keys an address may send per window before it is refused.
pub const MAX_FAILURES: u32 = 10;
/// The window over which wrong keys are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// A configured key shorter than this is warned about at start.
pub const MIN_KEY_CHARS: usize = 16;
/// Addresses remembered at most; past this the oldest windows are forgotten first.
const MAX_TRACKED: usize = 10_000;

/// Why a key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key is wrong.
    Wrong,
    /// This address sent too many wrong keys; try again after this long.
    Throttled(Duration),
}

/// The GM key with its per-address failure counts; cheap to clone.
#[derive(Clone)]
pub struct GmKey {
    key: Arc<str>,
    failures: Arc<Mutex<HashMap<Option<IpAddr>, Window>>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl GmKey {
    pub fn new(key: impl Into<Arc<str>>) -> Self {
        GmKey { key: key.into(), failures: Arc::default() }
    }

    /// The key itself (for the start-up banner).
    pub fn expose(&self) -> &str {
        &self.key
    }

    /// Checks `given` from address `from` (`None` when unknown) at time `now`.
    pub fn check(&self, given: &str, from: Option<IpAddr>, now: Instant) -> Result<(), Refusal> {
        self.check_with(given, from, now, |given| key_matches(given, &self.key).then_some(()))
    }

    /// Checks `given` with `accepts` (which knows the room keys as well as this one), counting
    /// a key it does not accept against the address like a wrong server key.
    pub fn check_with<T>(
        &self,
        given: &str,
        from: Option<IpAddr>,
        now: Instant,
        accepts: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, Refusal> {
        let Ok(mut failures) = self.failures.lock() else { return Err(Refusal::Wrong) };
        if let Some(w) = failures.get(&from) {
            let elapsed = now.saturating_duration_since(w.started);
            if elapsed >= FAILURE_WINDOW {
                failures.remove(&from);
            } else if w.failures >= MAX_FAILURES {
                return Err(Refusal::Throttled(FAILURE_WINDOW - elapsed));
            }
        }
        if let Some(access) = accepts(given) {
            return Ok(access);
        }
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&from) {
            failures.retain(|_, w| now.saturating_duration_since(w.started) < FAILURE_WINDOW);
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        failures.entry(from).or_insert(Window { started: now, failures: 0 }).failures += 1;
        Err(Refusal::Wrong)
    }
}

/// A new key: 24 random alphanumeric characters (~142 bits).
pub fn new_key() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

/// Compares keys in time independent of where they differ.
pub fn key_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_exactly() {
        assert!(key_matches("abc", "abc"));
        assert!(!key_matches("abd", "abc"));
        assert!(!key_matches("ab", "abc"));
        assert!(!key_matches("abcd", "abc"));
    }

    #[test]
    fn an_address_guessing_is_refused_for_the_rest_of_its_window() {
        let key = GmKey::new("right-key");
        let (a, b) = (Some(IpAddr::from([10, 0, 0, 1])), Some(IpAddr::from([10, 0, 0, 2])));
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(key.check("guess", a, t0 + Duration::from_secs(i.into())), Err(Refusal::Wrong));
        }
        let later = t0 + Duration::from_secs(20);
        assert_eq!(key.check("guess", a, later), Err(Refusal::Throttled(Duration::from_secs(40))));
        assert_eq!(
            key.check("right-key", a, later),
            Err(Refusal::Throttled(Duration::from_secs(40))),
            "not even checked"
        );
        assert_eq!(key.check("right-key", b, later), Ok(()), "another address is not affected");
        assert_eq!(key.check("right-key", a, t0 + FAILURE_WINDOW), Ok(()), "the window passed");
        assert_eq!(key.check("guess", a, t0 + FAILURE_WINDOW), Err(Refusal::Wrong), "counting starts afresh");
    }
}
