//! Replay of board events: each board's events are kept (bounded in length and age) under
//! stream ids, the ids its feed sends as SSE `id:`, so that a reconnecting client's
//! `Last-Event-ID` says where to resume.

use std::{fmt, str::FromStr};

use super::BoardEvent;

/// A Redis Stream entry id, `{milliseconds}-{sequence}`: ordered by time, then sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.trim().split_once('-').ok_or(())?;
        Ok(Self {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// The events of a board after some id.
#[derive(Debug, Default, PartialEq)]
pub struct History {
    /// Oldest first, at most the limit asked for.
    pub events: Vec<(StreamId, BoardEvent)>,
    /// False when events after the id were already dropped (older than the retention): the
    /// caller must start over from the current state instead.
    pub complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_print_and_order() {
        let a: StreamId = "1733050000000-0".parse().unwrap();
        let b: StreamId = "1733050000000-1".parse().unwrap();
        let c: StreamId = "1733050000001-0".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1733050000000-1");
        for bad in ["", "12", "a-b", "1-", "-1", "1-2-3"] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad}");
        }
    }
}
