//! The schema's scalar representation and the `UUID`, `DateTime` and `JSON` scalars.
//!
//! juniper's validator rejects object and list values for any scalar. [`BoardsScalar`] adds a
//! `Json` variant holding a whole JSON document, so that a `JSON` input arrives as one scalar:
//! the transport's variable pre-pass (`variables.rs`) wraps values found at `JSON` positions.

use std::fmt;

use chrono::{SecondsFormat, Timelike, Utc};
use derive_more::with_trait::{Display, From, TryInto};
use juniper::{graphql_scalar, ParseScalarResult, ParseScalarValue, ScalarToken, ScalarValue};
use serde::{de, Deserialize, Deserializer, Serialize};
use serde_json::Value as JsonValue;

/// juniper's default scalar values plus whole JSON documents.
#[derive(Clone, Debug, Display, From, PartialEq, juniper::ScalarValue, Serialize, TryInto)]
#[serde(untagged)]
pub enum BoardsScalar {
    #[from]
    #[value(to_float, to_int)]
    Int(i32),
    #[from]
    #[value(to_float)]
    Float(f64),
    #[from(&str, std::borrow::Cow<'_, str>, String)]
    #[value(as_str, to_string)]
    String(String),
    #[from]
    #[value(to_bool)]
    Boolean(bool),
    /// A whole JSON document, shared: outputs point at the row's value instead of copying it.
    #[from(ignore)]
    #[try_into(ignore)]
    Json(std::sync::Arc<JsonValue>),
}

impl<'de> Deserialize<'de> for BoardsScalar {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = BoardsScalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a valid input value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<BoardsScalar, E> {
                Ok(BoardsScalar::Boolean(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<BoardsScalar, E> {
                Ok(i32::try_from(n).map_or(BoardsScalar::Float(n as f64), BoardsScalar::Int))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<BoardsScalar, E> {
                Ok(i32::try_from(n).map_or(BoardsScalar::Float(n as f64), BoardsScalar::Int))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<BoardsScalar, E> {
                Ok(BoardsScalar::Float(f))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BoardsScalar, E> {
                Ok(BoardsScalar::String(s.into()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<BoardsScalar, E> {
                Ok(BoardsScalar::String(s))
            }
        }

        de.deserialize_any(Visitor)
    }
}

/// The `JSON` scalar: any JSON value in and out, unchanged.
#[derive(Clone, Debug, PartialEq, juniper::GraphQLScalar)]
#[graphql(
    name = "JSON",
    description = "The `JSON` scalar type represents JSON values as specified by [ECMA-404](https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf).",
    specified_by_url = "https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf",
    with = json_scalar,
    scalar = BoardsScalar
)]
pub struct Json(pub std::sync::Arc<JsonValue>);

impl Json {
    pub fn new(value: JsonValue) -> Self {
        Self(std::sync::Arc::new(value))
    }

    /// The value, moved out when this is its only owner.
    pub fn into_value(self) -> JsonValue {
        std::sync::Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

mod json_scalar {
    use super::*;

    pub(super) fn to_output(v: &Json) -> BoardsScalar {
        BoardsScalar::Json(v.0.clone())
    }

    pub(super) fn from_input(v: &BoardsScalar) -> Result<Json, Box<str>> {
        Ok(Json::new(match v {
            BoardsScalar::Json(j) => return Ok(Json(j.clone())),
            BoardsScalar::Int(i) => JsonValue::from(*i),
            BoardsScalar::Float(f) => serde_json::Number::from_f64(*f)
                .map(JsonValue::Number)
                .ok_or("JSON numbers must be finite")?,
            BoardsScalar::String(s) => JsonValue::String(s.clone()),
            BoardsScalar::Boolean(b) => JsonValue::Bool(*b),
        }))
    }

    pub(super) fn parse_token(t: ScalarToken<'_>) -> ParseScalarResult<BoardsScalar> {
        <String as ParseScalarValue<BoardsScalar>>::from_str(t)
            .or_else(|_| <i32 as ParseScalarValue<BoardsScalar>>::from_str(t))
            .or_else(|_| <f64 as ParseScalarValue<BoardsScalar>>::from_str(t))
    }
}

// `UUID`: lenient input (hyphenated, 32 hex digits, braces, `urn:uuid:`), canonical output.
// (A plain comment: the original schema gives this scalar no description.)
#[graphql_scalar]
#[graphql(
    name = "UUID",
    with = uuid_scalar,
    parse_token(String),
    scalar = BoardsScalar
)]
type Uuid = uuid::Uuid;

mod uuid_scalar {
    use super::*;

    pub(super) fn to_output(v: &Uuid) -> BoardsScalar {
        BoardsScalar::String(v.hyphenated().to_string())
    }

    pub(super) fn from_input(v: &BoardsScalar) -> Result<Uuid, Box<str>> {
        let s = v.try_as_str().ok_or("UUID must be a string")?;
        Uuid::parse_str(s.trim()).map_err(|_| format!("Invalid UUID: {s:?}").into())
    }
}

/// `DateTime`: UTC timestamps written like Python's `isoformat()` (`+00:00`, microseconds
/// only when non-zero), as the original server does.
#[graphql_scalar]
#[graphql(
    name = "DateTime",
    description = "Date with time (isoformat)",
    with = datetime_scalar,
    parse_token(String),
    scalar = BoardsScalar
)]
type DateTime = chrono::DateTime<Utc>;

/// Formats like Python's `datetime.isoformat()` for an aware UTC value (by hand: chrono's
/// `format` parses its pattern on every call, and a board page formats hundreds of these).
pub fn isoformat(v: &chrono::DateTime<Utc>) -> String {
    use chrono::Datelike as _;
    use std::fmt::Write as _;
    let mut out = String::with_capacity(32);
    let micros = v.nanosecond() / 1000 % 1_000_000;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        v.year(),
        v.month(),
        v.day(),
        v.hour(),
        v.minute(),
        v.second()
    );
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out.push_str("+00:00");
    out
}

mod datetime_scalar {
    use super::*;

    pub(super) fn to_output(v: &DateTime) -> BoardsScalar {
        BoardsScalar::String(isoformat(v))
    }

    pub(super) fn from_input(v: &BoardsScalar) -> Result<DateTime, Box<str>> {
        let s = v.try_as_str().ok_or("DateTime must be a string")?;
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| format!("Invalid DateTime: {s:?}").into())
    }
}

/// For logs and tests: RFC 3339 with microseconds.
pub fn rfc3339(v: &chrono::DateTime<Utc>) -> String {
    v.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn datetimes_look_like_python_isoformat() {
        let whole = Utc.with_ymd_and_hms(2026, 3, 29, 10, 15, 30).unwrap();
        assert_eq!(isoformat(&whole), "2026-03-29T10:15:30+00:00");
        let frac = whole + chrono::Duration::microseconds(123_456);
        assert_eq!(isoformat(&frac), "2026-03-29T10:15:30.123456+00:00");
    }

    #[test]
    fn json_scalars_serialise_as_nested_json() {
        let v = BoardsScalar::Json(std::sync::Arc::new(
            serde_json::json!({"a": [1, {"b": null}]}),
        ));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":[1,{"b":null}]}"#
        );
    }
}
