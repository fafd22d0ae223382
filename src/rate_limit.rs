//! Rate limits: a token bucket, which lets a burst through at once and then a steady rate.
//! Control-socket messages and device-check reports are refused by it when they flood.

use std::time::{Duration, Instant};

/// Up to `burst` takes at once, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: f64, per_second: f64) -> Self {
        TokenBucket { tokens: burst, burst, per_second, refilled_at: Instant::now() }
    }

    /// Takes one token at `now`; with none left, how long until there is one.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_steady_rate() {
        let mut bucket = TokenBucket::new(3.0, 2.0);
        let t0 = bucket.refilled_at;
        assert!((0..3).all(|_| bucket.take(t0).is_ok()));
        assert_eq!(bucket.take(t0), Err(Duration::from_millis(500)), "one token takes 0.5 s at 2/s");
        assert!(bucket.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(bucket.take(t0 + Duration::from_millis(600)).is_err());
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.take(later).is_ok()));
        assert!(bucket.take(later).is_err());
    }
}
