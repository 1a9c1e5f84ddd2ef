//! Checks on client-supplied text: PostgreSQL `text`/`varchar` and `jsonb` cannot store a NUL
//! character, so every string that may reach the database is refused up front with a clear
//! `BAD_USER_INPUT` instead of a driver error.

use serde_json::Value;

use crate::{AppError, AppResult};

/// Refuses `value` when it contains a NUL character: `<field> must not contain NUL characters`.
pub fn check_text(field: &str, value: &str) -> AppResult<()> {
    if value.contains('\0') {
        return Err(AppError::bad_input(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// [`check_text`] for an optional argument.
pub fn check_opt_text(field: &str, value: Option<&str>) -> AppResult<()> {
    value.map_or(Ok(()), |v| check_text(field, v))
}

/// Largest JSON document a client may store in one field (board settings, tag metadata,
/// generation inputs): every list of them is loaded whole per row, so their size bounds what
/// one request can make the server hold.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

/// Refuses a JSON document larger than [`MAX_JSON_BYTES`] when serialised.
pub fn check_json_size(field: &str, value: &Value) -> AppResult<()> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    let _ = serde_json::to_writer(&mut n, value);
    if n.0 > MAX_JSON_BYTES {
        return Err(AppError::bad_input(format!(
            "{field} must be at most {MAX_JSON_BYTES} bytes of JSON (got {})",
            n.0
        )));
    }
    Ok(())
}

/// Whether a JSON document holds a NUL character, in a key or a string (jsonb cannot store
/// one).
pub fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_characters_are_found_in_text_and_json() {
        assert!(check_text("Query", "fine").is_ok());
        let err = check_text("Query", "a\0b").unwrap_err();
        assert_eq!(err.to_string(), "Query must not contain NUL characters");
        assert_eq!(err.code(), "BAD_USER_INPUT");
        assert!(check_opt_text("Slug", None).is_ok());
        assert!(check_opt_text("Slug", Some("\0")).is_err());
        assert!(!json_has_nul(&json!({"a": ["b", 1, null]})));
        assert!(json_has_nul(&json!({"a": ["b\0"]})));
        assert!(json_has_nul(&json!({"a\0": 1})));
        assert!(check_json_size("settings", &json!({"a": "x".repeat(1000)})).is_ok());
        let err =
            check_json_size("settings", &json!({"a": "x".repeat(MAX_JSON_BYTES)})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("settings must be at most 16384 bytes of JSON"),
            "{err}"
        );
    }
}
