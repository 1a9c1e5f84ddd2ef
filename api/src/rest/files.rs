//! Serving one stored object with the static-file semantics of RFC 9110: validators (`ETag`,
//! `Last-Modified`), conditional requests (304/412), single and multiple byte ranges (206,
//! `multipart/byteranges`, 416), `If-Range`, and HEAD (the same headers, no body). The bytes
//! come from the storage seam, range by range, as the client reads them.
//!
//! actix-files' `NamedFile` ignores `If-Range` and answers only the first of several ranges as
//! if it were the whole answer, so stored artifacts are served here instead.

use std::{collections::VecDeque, sync::Arc, time::SystemTime};

use actix_web::{
    body::SizedStream,
    http::{
        header::{self, ContentDisposition, EntityTag, Header, HttpDate},
        StatusCode,
    },
    HttpRequest, HttpResponse,
};
use boards_shared::storage::{ByteStream, ObjectInfo, Storage};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::json;

/// More ranges than this in one request are ignored (the whole file is sent): answering many
/// tiny parts costs more than the file.
const MAX_RANGES: usize = 32;
/// A stored object and what the response says about it.
pub struct ServedFile {
    pub storage: Arc<dyn Storage>,
    pub key: String,
    pub info: ObjectInfo,
    pub content_type: String,
    pub disposition: ContentDisposition,
}

pub use boards_shared::storage::ByteRange;

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    /// Not a byte range request we honour (unknown unit, bad syntax, too many ranges): send
    /// the whole file, as RFC 9110 §14.2 allows.
    Ignore,
    /// Well-formed, but no range overlaps the file: 416.
    Unsatisfiable,
    /// One or more ranges within the file, overlapping ones merged.
    Satisfiable(Vec<ByteRange>),
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: only overflow can fail, and a huge number means "past the end".
    Some(s.parse().unwrap_or(u64::MAX))
}

/// Parses a `Range` header value against a file of `len` bytes.
pub fn parse_ranges(value: &str, len: u64) -> Ranges {
    let Some((unit, set)) = value.split_once('=') else {
        return Ranges::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranges::Ignore;
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty())
        .collect();
    if specs.is_empty() || specs.len() > MAX_RANGES {
        return Ranges::Ignore;
    }
    let mut ranges = Vec::with_capacity(specs.len());
    for spec in specs {
        let Some((first, last)) = spec.split_once('-') else {
            return Ranges::Ignore;
        };
        if first.is_empty() {
            let Some(suffix) = number(last) else {
                return Ranges::Ignore;
            };
            if suffix > 0 && len > 0 {
                ranges.push(ByteRange {
                    start: len.saturating_sub(suffix),
                    end: len - 1,
                });
            }
            continue;
        }
        let Some(start) = number(first) else {
            return Ranges::Ignore;
        };
        let end = if last.is_empty() {
            u64::MAX
        } else {
            match number(last) {
                Some(end) if end >= start => end,
                _ => return Ranges::Ignore,
            }
        };
        if start < len {
            ranges.push(ByteRange {
                start,
                end: end.min(len - 1),
            });
        }
    }
    if ranges.is_empty() {
        return Ranges::Unsatisfiable;
    }
    Ranges::Satisfiable(coalesce(ranges))
}

/// Keeps the requested order unless ranges overlap or touch; then sorts and merges them
/// (RFC 9110 §14.2 lets a server coalesce), so no byte is sent twice.
fn coalesce(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| r.start);
    let overlapping = sorted
        .windows(2)
        .any(|w| w[1].start <= w[0].end.saturating_add(1));
    if !overlapping {
        return ranges;
    }
    ranges.clear();
    for r in sorted {
        match ranges.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => ranges.push(r),
        }
    }
    ranges
}

/// The object's strong entity tag, as its store gives it (quotes and weakness removed).
fn etag_of(file: &ServedFile) -> EntityTag {
    let tag = file.info.etag.trim_start_matches("W/").trim_matches('"');
    EntityTag::new_strong(tag.chars().filter(|c| *c != '"').collect())
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A header that is present but cannot be parsed counts as present (and not matching).
fn typed<H: Header>(req: &HttpRequest) -> Option<Option<H>> {
    req.headers()
        .contains_key(H::name())
        .then(|| H::parse(req).ok())
}

enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// RFC 9110 §13.2.2, steps 1-4.
fn evaluate_preconditions(
    req: &HttpRequest,
    etag: &EntityTag,
    modified: Option<u64>,
) -> Precondition {
    match typed::<header::IfMatch>(req) {
        Some(Some(header::IfMatch::Any)) => {}
        Some(Some(header::IfMatch::Items(items))) => {
            if !items.iter().any(|t| t.strong_eq(etag)) {
                return Precondition::Failed;
            }
        }
        Some(None) => return Precondition::Failed,
        None => {
            if let (Some(Some(header::IfUnmodifiedSince(since))), Some(m)) =
                (typed::<header::IfUnmodifiedSince>(req), modified)
            {
                if m > seconds(since.into()) {
                    return Precondition::Failed;
                }
            }
        }
    }
    match typed::<header::IfNoneMatch>(req) {
        Some(Some(header::IfNoneMatch::Any)) => Precondition::NotModified,
        Some(Some(header::IfNoneMatch::Items(items))) => {
            if items.iter().any(|t| t.weak_eq(etag)) {
                Precondition::NotModified
            } else {
                Precondition::Proceed
            }
        }
        Some(None) => Precondition::Proceed,
        None => match (typed::<header::IfModifiedSince>(req), modified) {
            (Some(Some(header::IfModifiedSince(since))), Some(m)) if m <= seconds(since.into()) => {
                Precondition::NotModified
            }
            _ => Precondition::Proceed,
        },
    }
}

/// `If-Range` (RFC 9110 §13.1.5): the range applies only when the validator still matches —
/// an entity tag by strong comparison (a weak tag never matches), a date only when it is
/// exactly the file's `Last-Modified`. Anything else means "send the whole file".
fn if_range_holds(req: &HttpRequest, etag: &EntityTag, modified: Option<u64>) -> bool {
    match typed::<header::IfRange>(req) {
        None => true,
        Some(Some(header::IfRange::EntityTag(tag))) => tag.strong_eq(etag),
        Some(Some(header::IfRange::Date(date))) => modified == Some(seconds(date.into())),
        Some(None) => false,
    }
}

/// The response for `req` (GET or HEAD; actix drops the body of HEAD responses but keeps
/// their `Content-Length`).
pub fn respond(req: &HttpRequest, served: ServedFile) -> HttpResponse {
    let etag = etag_of(&served);
    let modified: Option<SystemTime> = served.info.last_modified.map(SystemTime::from);
    let last_modified = modified.map(HttpDate::from);
    let modified_secs = modified.map(seconds);

    let mut res = HttpResponse::build(StatusCode::OK);
    res.insert_header((header::ETAG, etag.to_string()))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
    if let Some(lm) = last_modified {
        res.insert_header((header::LAST_MODIFIED, lm.to_string()));
    }

    match evaluate_preconditions(req, &etag, modified_secs) {
        Precondition::Failed => {
            return res
                .status(StatusCode::PRECONDITION_FAILED)
                .json(json!({"detail": "Precondition Failed"}))
        }
        Precondition::NotModified => return res.status(StatusCode::NOT_MODIFIED).finish(),
        Precondition::Proceed => {}
    }

    res.insert_header((header::CONTENT_DISPOSITION, served.disposition.to_string()));
    let ranges = match req.headers().get(header::RANGE) {
        Some(value) if if_range_holds(req, &etag, modified_secs) => match value.to_str() {
            Ok(v) => parse_ranges(v, served.info.size),
            Err(_) => Ranges::Ignore,
        },
        _ => Ranges::Ignore,
    };
    let len = served.info.size;
    match ranges {
        Ranges::Ignore => {
            res.insert_header((header::CONTENT_TYPE, served.content_type.clone()));
            let whole = (len > 0).then_some(Part::Object(ByteRange {
                start: 0,
                end: len - 1,
            }));
            let body = object_stream(served.storage, served.key, whole.into_iter().collect());
            res.body(SizedStream::new(len, body))
        }
        Ranges::Unsatisfiable => res
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .insert_header((header::CONTENT_RANGE, format!("bytes */{len}")))
            .json(json!({"detail": "Range Not Satisfiable"})),
        Ranges::Satisfiable(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            res.status(StatusCode::PARTIAL_CONTENT)
                .insert_header((header::CONTENT_TYPE, served.content_type.clone()))
                .insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{len}", r.start, r.end),
                ));
            res.body(SizedStream::new(
                r.len(),
                object_stream(served.storage, served.key, vec![Part::Object(r)]),
            ))
        }
        Ranges::Satisfiable(ranges) => {
            let boundary = uuid::Uuid::new_v4().simple().to_string();
            let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
            for (i, r) in ranges.iter().enumerate() {
                let lead = if i == 0 { "" } else { "\r\n" };
                parts.push(Part::Bytes(Bytes::from(format!(
                    "{lead}--{boundary}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
                    served.content_type, r.start, r.end
                ))));
                parts.push(Part::Object(*r));
            }
            parts.push(Part::Bytes(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
            let total = parts.iter().map(Part::len).sum();
            res.status(StatusCode::PARTIAL_CONTENT).insert_header((
                header::CONTENT_TYPE,
                format!("multipart/byteranges; boundary={boundary}"),
            ));
            res.body(SizedStream::new(
                total,
                object_stream(served.storage, served.key, parts),
            ))
        }
    }
}

/// A piece of a response body.
enum Part {
    Bytes(Bytes),
    Object(ByteRange),
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Object(r) => r.len(),
        }
    }
}

/// The body: literal pieces and ranges of the object, each range read from the store when the
/// client gets to it.
fn object_stream(
    storage: Arc<dyn Storage>,
    key: String,
    parts: Vec<Part>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + 'static {
    let parts = VecDeque::from(parts);
    let state: (VecDeque<Part>, Option<ByteStream>) = (parts, None);
    futures::stream::try_unfold(state, move |(mut parts, mut current)| {
        let (storage, key) = (storage.clone(), key.clone());
        async move {
            loop {
                if let Some(body) = current.as_mut() {
                    match body.next().await {
                        Some(Ok(chunk)) => return Ok(Some((chunk, (parts, current)))),
                        Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                        None => current = None,
                    }
                }
                match parts.pop_front() {
                    None => return Ok(None),
                    Some(Part::Bytes(b)) => return Ok(Some((b, (parts, current)))),
                    Some(Part::Object(r)) => {
                        current = Some(
                            storage
                                .get(&key, Some(r))
                                .await
                                .map_err(|e| std::io::Error::other(e.to_string()))?,
                        );
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        use Ranges::*;
        assert_eq!(parse_ranges("bytes=0-9", 10), Satisfiable(vec![r(0, 9)]));
        assert_eq!(parse_ranges("bytes=0-", 10), Satisfiable(vec![r(0, 9)]));
        assert_eq!(parse_ranges("bytes=5-100", 10), Satisfiable(vec![r(5, 9)]));
        assert_eq!(parse_ranges("bytes=-3", 10), Satisfiable(vec![r(7, 9)]));
        assert_eq!(parse_ranges("bytes=-30", 10), Satisfiable(vec![r(0, 9)]));
        assert_eq!(parse_ranges("BYTES = 1-2", 10), Satisfiable(vec![r(1, 2)]));
        assert_eq!(
            parse_ranges("bytes=4-5, 0-1", 10),
            Satisfiable(vec![r(4, 5), r(0, 1)])
        );
        assert_eq!(
            parse_ranges("bytes=0-3,2-5,9-", 10),
            Satisfiable(vec![r(0, 5), r(9, 9)])
        );
        assert_eq!(
            parse_ranges("bytes=0-1,2-3", 10),
            Satisfiable(vec![r(0, 3)])
        );
        assert_eq!(
            parse_ranges("bytes=0-1,20-30", 10),
            Satisfiable(vec![r(0, 1)])
        );
        assert_eq!(
            parse_ranges("bytes=0-99999999999999999999999", 10),
            Satisfiable(vec![r(0, 9)])
        );
        assert_eq!(parse_ranges("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_ranges("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_ranges("bytes=0-", 0), Unsatisfiable);
        for ignored in [
            "items=0-1",
            "bytes",
            "bytes=",
            "bytes=a-b",
            "bytes=5-4",
            "bytes=1",
            "bytes=--1",
            "bytes=0x1-2",
        ] {
            assert_eq!(parse_ranges(ignored, 10), Ignore, "{ignored}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse_ranges(&many, 10), Ignore);
    }
}
