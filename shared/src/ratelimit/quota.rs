//! [`Quota`]: how many events a key may have per period, as configured (`30/60`, `30/1m`, `off`).

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

/// Largest count of one quota (a higher one is no limit at all; say `off`).
const MAX_COUNT: u32 = 1_000_000;
/// Longest period of one quota: keys live at most this long in Redis.
const MAX_PERIOD_SECONDS: u64 = 86_400;

/// A rate: at most `count` events in any `period`, all of them at once if they come in a burst,
/// then one more every `period / count`. `Off` never limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Quota {
    Off,
    Per { count: u32, period: Duration },
}

impl Quota {
    pub const fn per(count: u32, period_seconds: u64) -> Self {
        Self::Per {
            count,
            period: Duration::from_secs(period_seconds),
        }
    }

    /// Parses `COUNT/PERIOD` (period in seconds, or with a unit: `30/60`, `30/60s`, `30/1m`,
    /// `1000/1h`) or `off`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        let bad = || {
            format!(
                "expected COUNT/PERIOD such as `30/60` (30 per 60 seconds) or `30/1m` \
                 (units s, m, h), or `off`; got {raw:?}"
            )
        };
        let (count, period) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let (digits, unit) = match period.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            Some((at, _)) => period.split_at(at),
            None => (period, "s"),
        };
        let multiplier = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        let seconds = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .ok_or_else(bad)?;
        if count == 0 || count > MAX_COUNT {
            return Err(format!(
                "the count must be between 1 and {MAX_COUNT} (use `off` for no limit); got {raw:?}"
            ));
        }
        if seconds == 0 || seconds > MAX_PERIOD_SECONDS {
            return Err(format!(
                "the period must be between 1 second and 24 hours; got {raw:?}"
            ));
        }
        Ok(Self::per(count, seconds))
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Per { count, period } => write!(f, "{count}/{}", period.as_secs()),
        }
    }
}

impl TryFrom<String> for Quota {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<Quota> for String {
    fn from(q: Quota) -> Self {
        q.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_period_parse_with_or_without_a_unit() {
        assert_eq!(Quota::parse("30/60").unwrap(), Quota::per(30, 60));
        assert_eq!(Quota::parse(" 30 / 60s ").unwrap(), Quota::per(30, 60));
        assert_eq!(Quota::parse("30/1m").unwrap(), Quota::per(30, 60));
        assert_eq!(Quota::parse("1000/1h").unwrap(), Quota::per(1000, 3600));
        assert_eq!(Quota::parse("OFF").unwrap(), Quota::Off);
        assert_eq!(Quota::per(30, 60).to_string(), "30/60");
        assert_eq!(Quota::Off.to_string(), "off");
    }

    #[test]
    fn nonsense_zero_and_huge_values_are_refused_with_the_format() {
        for raw in [
            "", "30", "30/", "/60", "x/60", "30/60x", "30/m", "-1/60", "30/1d",
        ] {
            let e = Quota::parse(raw).unwrap_err();
            assert!(e.contains("COUNT/PERIOD"), "{raw}: {e}");
        }
        assert!(Quota::parse("0/60").unwrap_err().contains("count"));
        assert!(Quota::parse("2000000/60").unwrap_err().contains("count"));
        assert!(Quota::parse("5/0").unwrap_err().contains("period"));
        assert!(Quota::parse("5/25h").unwrap_err().contains("period"));
    }
}
