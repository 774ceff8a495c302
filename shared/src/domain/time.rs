use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch: what DynamoDB's TTL attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix(seconds: i64) -> Self {
        Self(seconds)
    }

    pub fn now() -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    pub fn plus(self, duration: Duration) -> Self {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs))
    }

    pub fn minus(self, duration: Duration) -> Self {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(secs))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Timestamp {
    /// Reads RFC 3339, as GitHub writes times (`2026-11-22T11:00:00Z`).
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
        Ok(Self(parsed.unix_timestamp()))
    }

    /// Writes RFC 3339 in UTC, whole seconds.
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }

    /// Its day in UTC: `2026-12-03`.
    pub fn day(self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.0)
            .map_or_else(|_| "unknown".to_owned(), |t| t.date().to_string())
    }

    /// How long until `later`, zero if it has passed.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_secs(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

/// Where "now" comes from: the system, or a test's hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let at = Timestamp::parse_rfc3339("2016-07-11T22:14:10Z").unwrap();
        assert_eq!(at.unix(), 1_468_275_250);
        assert_eq!(at.to_rfc3339(), "2016-07-11T22:14:10Z");
        assert_eq!(Timestamp::parse_rfc3339("2016-07-12T00:14:10+02:00").unwrap(), at);
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn until_never_goes_negative() {
        let at = Timestamp::from_unix(100);
        assert_eq!(at.until(Timestamp::from_unix(160)), Duration::from_secs(60));
        assert_eq!(at.until(Timestamp::from_unix(40)), Duration::ZERO);
    }
}
