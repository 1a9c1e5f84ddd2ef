//! Board member operations, in the shape the Boards client calls them (contract §1.6 items
//! 2-4): add by e-mail, change role and remove by membership id.

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::{
    access::{BoardRole, Relation},
    boards::visible_board,
    text::check_text,
    Actor,
};
use crate::{
    db::models::{
        board_members::{self, NewBoardMember},
        users, BoardMember,
    },
    AppError, AppResult,
};

pub async fn add_member_by_email(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    board_id: Uuid,
    email: &str,
    role: BoardRole,
) -> AppResult<BoardMember> {
    check_text("Email", email)?;
    let email = email.trim();
    if email.is_empty() || !email.contains('@') || email.len() > 255 {
        return Err(AppError::bad_input("Invalid email address"));
    }
    let (board, relation) = visible_board(conn, actor, board_id, "Board not found").await?;
    if !relation.can_administer() {
        return Err(AppError::forbidden(
            "Permission denied: only board owner or admin can add members",
        ));
    }
    let target = users::find_by_email(conn, board.tenant_id, email)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            AppError::not_found(format!("User not found: no user with email '{email}'"))
        })?;
    if target.id == board.owner_id {
        return Err(AppError::Conflict("User is already the board owner".into()));
    }
    let new = NewBoardMember {
        board_id,
        user_id: target.id,
        role: role.as_str(),
        invited_by: Some(actor.user_id),
    };
    board_members::insert(conn, &new)
        .await?
        .ok_or_else(|| AppError::Conflict("User is already a board member".into()))
}

async fn member_and_relation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    member_id: Uuid,
) -> AppResult<(BoardMember, Relation, Uuid)> {
    let member = board_members::find(conn, member_id)
        .await?
        .ok_or_else(|| AppError::not_found("Board member not found"))?;
    let (board, relation) =
        visible_board(conn, actor, member.board_id, "Board member not found").await?;
    Ok((member, relation, board.owner_id))
}

pub async fn update_member_role(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    member_id: Uuid,
    role: BoardRole,
) -> AppResult<BoardMember> {
    let (member, relation, owner_id) = member_and_relation(conn, actor, member_id).await?;
    if member.user_id == owner_id {
        return Err(AppError::bad_input("Cannot change the board owner's role"));
    }
    if !relation.can_administer() {
        return Err(AppError::forbidden(
            "Permission denied: only board owner or admin can change member roles",
        ));
    }
    board_members::update_role(conn, member.id, role.as_str())
        .await?
        .ok_or_else(|| AppError::not_found("Board member not found"))
}

/// Removes the membership and returns it (callers tell open progress streams of its board).
pub async fn remove_member(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    member_id: Uuid,
) -> AppResult<BoardMember> {
    let (member, relation, owner_id) = member_and_relation(conn, actor, member_id).await?;
    if member.user_id == owner_id {
        return Err(AppError::bad_input("Cannot remove the board owner"));
    }
    if !(relation.can_administer() || member.user_id == actor.user_id) {
        return Err(AppError::forbidden(
            "Permission denied: insufficient permissions to remove member",
        ));
    }
    if !board_members::delete(conn, member.id).await? {
        return Err(AppError::not_found("Board member not found"));
    }
    Ok(member)
}
