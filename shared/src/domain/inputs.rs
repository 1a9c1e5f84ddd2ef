//! Input artifacts: the other generations a request names in its artifact slots (an image to
//! filter, a video to extend). A caller may only use what it may read: the input must exist,
//! be in the caller's tenant and sit on a board the caller can read. Checked when the job is
//! created and again by the worker before it reads any bytes (access may have changed, and
//! rows can be written by other paths); a missing and an unreadable input get the same answer.

use std::collections::HashMap;

use diesel_async::AsyncPgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::access;
use crate::{
    db::models::{boards, generations, Generation},
    generators::{ArtifactKind, Registered},
};

/// One generation named in an artifact slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRef {
    pub field: String,
    pub kind: ArtifactKind,
    pub id: Uuid,
}

/// Why inputs cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A client-safe message naming the field.
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
}

fn ids_of(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// The generation ids in `generator`'s artifact slots of `input`, in slot order.
pub fn refs(generator: &Registered, input: &Value) -> Result<Vec<InputRef>, InputError> {
    let mut out = vec![];
    for slot in &generator.slots {
        let Some(value) = input.get(&slot.field).filter(|v| !v.is_null()) else {
            continue;
        };
        let ids = ids_of(value);
        if !slot.many && ids.len() > 1 {
            return Err(InputError::Invalid(format!(
                "{}: takes one generation id",
                slot.field
            )));
        }
        for id in ids {
            let id = Uuid::parse_str(id).map_err(|_| {
                InputError::Invalid(format!("{}: {id:?} is not a generation id", slot.field))
            })?;
            out.push(InputRef {
                field: slot.field.clone(),
                kind: slot.kind,
                id,
            });
        }
    }
    Ok(out)
}

/// Loads the generations `refs` name, each checked to exist in `tenant_id` on a board
/// `user_id` can read (two queries, plus one for members of private boards).
pub async fn readable(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    tenant_id: Uuid,
    refs: &[InputRef],
) -> Result<HashMap<Uuid, Generation>, InputError> {
    if refs.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = refs.iter().map(|r| r.id).collect();
    let found = generations::find_many(conn, &ids).await?;
    let mut board_ids: Vec<Uuid> = found.iter().map(|g| g.board_id).collect();
    board_ids.sort_unstable();
    board_ids.dedup();
    let boards = boards::find_many(conn, &board_ids).await?;
    let readable_boards: Vec<Uuid> = access::readable(conn, boards, Some(user_id))
        .await?
        .into_iter()
        .map(|b| b.id)
        .collect();
    let by_id: HashMap<Uuid, Generation> = found
        .into_iter()
        .filter(|g| g.tenant_id == tenant_id && readable_boards.contains(&g.board_id))
        .map(|g| (g.id, g))
        .collect();
    for r in refs {
        if !by_id.contains_key(&r.id) {
            return Err(InputError::Invalid(format!(
                "{}: generation {} not found",
                r.field, r.id
            )));
        }
    }
    Ok(by_id)
}

/// Checks at creation: every input is readable by the caller and of the slot's type.
pub async fn check(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    tenant_id: Uuid,
    generator: &Registered,
    input: &Value,
) -> Result<(), InputError> {
    let refs = refs(generator, input)?;
    let found = readable(conn, user_id, tenant_id, &refs).await?;
    for r in &refs {
        if let Some(g) = found.get(&r.id) {
            if g.artifact_type != r.kind.as_str() {
                return Err(InputError::Invalid(format!(
                    "{}: generation {} is a {} artifact, expected {}",
                    r.field, r.id, g.artifact_type, r.kind
                )));
            }
        }
    }
    Ok(())
}
