//! Board operations (contract §2.4 "Boards"), checks in the contract's order.

use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    access::{self, Relation},
    text::{check_json_size, check_text, json_has_nul},
    Actor,
};
use crate::{
    db::models::{
        boards::{self, BoardChanges, NewBoard},
        Board,
    },
    AppError, AppResult,
};

pub const MAX_TITLE_CHARS: usize = 255;

pub struct CreateBoard {
    pub title: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub settings: Option<Value>,
}

pub struct UpdateBoard {
    pub title: Option<String>,
    pub description: Option<String>,
    pub is_public: Option<bool>,
    pub settings: Option<Value>,
}

fn check_title(title: &str) -> AppResult<String> {
    check_text("Board title", title)?;
    let trimmed = title.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input("Board title must not be empty"));
    }
    if trimmed.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::bad_input(format!(
            "Board title must be at most {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(trimmed.to_string())
}

fn check_settings(settings: Value) -> AppResult<Value> {
    if json_has_nul(&settings) {
        return Err(AppError::bad_input(
            "settings must not contain NUL characters",
        ));
    }
    check_json_size("settings", &settings)?;
    match settings {
        Value::Object(_) => Ok(settings),
        _ => Err(AppError::bad_input("settings must be a JSON object")),
    }
}

/// The board `id` and the actor's relation to it. A board the actor may not even read
/// answers exactly like a missing one (`missing`, NOT_FOUND), so that a mutation does not
/// reveal that a private board, or something on it, exists. Callers then answer FORBIDDEN
/// only to actors who can read but not change: that reveals nothing they could not see.
pub async fn visible_board(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    missing: &str,
) -> AppResult<(Board, Relation)> {
    let board = boards::find(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found(missing))?;
    let relation = access::relation(conn, &board, Some(actor.user_id)).await?;
    if !access::can_read(&board, relation) {
        return Err(AppError::not_found(missing));
    }
    Ok((board, relation))
}

pub async fn create_board(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: CreateBoard,
) -> AppResult<Board> {
    if let Some(d) = &input.description {
        check_text("Board description", d)?;
    }
    let new = NewBoard {
        tenant_id: actor.tenant_id,
        owner_id: actor.user_id,
        title: check_title(&input.title)?,
        description: input.description,
        is_public: input.is_public,
        settings: input
            .settings
            .map(check_settings)
            .transpose()?
            .unwrap_or_else(|| json!({})),
        metadata: json!({}),
    };
    Ok(boards::insert(conn, &new).await?)
}

pub async fn update_board(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    input: UpdateBoard,
) -> AppResult<Board> {
    let (_, relation) = visible_board(conn, actor, id, "Board not found").await?;
    if !relation.can_administer() {
        return Err(AppError::forbidden(
            "Permission denied: only board owner or admin can update",
        ));
    }
    if let Some(d) = &input.description {
        check_text("Board description", d)?;
    }
    let changes = BoardChanges {
        title: input.title.as_deref().map(check_title).transpose()?,
        description: input.description,
        is_public: input.is_public,
        settings: input.settings.map(check_settings).transpose()?,
    };
    boards::update(conn, id, &changes)
        .await?
        .ok_or_else(|| AppError::not_found("Board not found"))
}

pub async fn delete_board(conn: &mut AsyncPgConnection, actor: &Actor, id: Uuid) -> AppResult<()> {
    let (_, relation) = visible_board(conn, actor, id, "Board not found").await?;
    if relation != Relation::Owner {
        return Err(AppError::forbidden(
            "Permission denied: only board owner can delete",
        ));
    }
    if !boards::delete(conn, id).await? {
        return Err(AppError::not_found("Board not found"));
    }
    Ok(())
}

/// `board(id)`: the board and the caller's relation to it, when it exists and is readable.
pub async fn readable_board(
    conn: &mut AsyncPgConnection,
    viewer: Option<Uuid>,
    id: Uuid,
) -> AppResult<Option<(Board, Relation)>> {
    let Some(board) = boards::find(conn, id).await? else {
        return Ok(None);
    };
    let relation = access::relation(conn, &board, viewer).await?;
    Ok(access::can_read(&board, relation).then_some((board, relation)))
}
