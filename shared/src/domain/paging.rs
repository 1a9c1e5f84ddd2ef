//! Offset pagination arguments, checked before they reach SQL.

use crate::AppError;

/// `limit`/`offset` as SQL values. A missing or zero `limit` means `default`; larger than `max`
/// is clamped; negative values are refused with a clear error.
pub fn page(
    limit: Option<i32>,
    offset: Option<i32>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), AppError> {
    let limit = match limit {
        None | Some(0) => default,
        Some(l) if l < 0 => return Err(AppError::bad_input("limit must not be negative")),
        Some(l) => i64::from(l),
    };
    let offset = match offset {
        None => 0,
        Some(o) if o < 0 => return Err(AppError::bad_input("offset must not be negative")),
        Some(o) => i64::from(o),
    };
    Ok((limit.min(max), offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_clamps_and_refusals() {
        assert_eq!(page(None, None, 50, 500).unwrap(), (50, 0));
        assert_eq!(page(Some(0), Some(3), 50, 500).unwrap(), (50, 3));
        assert_eq!(page(Some(10_000), None, 50, 500).unwrap(), (500, 0));
        assert!(page(Some(-1), None, 50, 500).is_err());
        assert!(page(None, Some(-1), 50, 500).is_err());
    }
}
