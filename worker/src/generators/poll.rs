//! Waiting on an upstream job: polls start at `poll_interval_ms` and slow down by half each time
//! up to `max_poll_interval_ms`, so a thousand jobs in flight cost few requests; a cancel ends
//! the wait at once.

use std::time::Duration;

use boards_shared::generators::run::GenerateError;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub struct Poll {
    pub first: Duration,
    pub max: Duration,
}

pub struct Polling {
    next: Duration,
    max: Duration,
}

impl Poll {
    pub fn start(self) -> Polling {
        Polling {
            next: self.first,
            max: self.max.max(self.first),
        }
    }
}

impl Polling {
    /// Sleeps until the next poll; `Cancelled` when the run is stopped meanwhile.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> Result<(), GenerateError> {
        let wait = self.next;
        self.next = (self.next.mul_f64(1.5)).min(self.max);
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = cancel.cancelled() => Err(GenerateError::Cancelled),
        }
    }
}

/// Progress while a provider works without saying how far it is: from 10 % towards 90 %,
/// half-way after a minute.
pub fn estimate(elapsed: Duration) -> f64 {
    10.0 + 80.0 * (1.0 - (-elapsed.as_secs_f64() / 86.6).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_and_stay_below_ninety() {
        assert!((estimate(Duration::ZERO) - 10.0).abs() < 1e-9);
        let minute = estimate(Duration::from_secs(60));
        assert!((minute - 50.0).abs() < 1.0, "{minute}");
        assert!(estimate(Duration::from_secs(100_000)) <= 90.0);
    }

    #[tokio::test]
    async fn waits_slow_down_to_the_maximum() {
        let mut p = Poll {
            first: Duration::from_millis(1),
            max: Duration::from_millis(2),
        }
        .start();
        p.wait(&CancellationToken::new()).await.unwrap();
        assert_eq!(p.next, Duration::from_micros(1500));
        p.wait(&CancellationToken::new()).await.unwrap();
        assert_eq!(p.next, Duration::from_millis(2));
        let c = CancellationToken::new();
        c.cancel();
        assert!(matches!(p.wait(&c).await, Err(GenerateError::Cancelled)));
    }
}
