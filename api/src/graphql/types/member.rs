//! `BoardMember`.

use boards_shared::{
    db::models::{Board, BoardMember},
    AppError,
};
use chrono::{DateTime, Utc};
use juniper::graphql_object;
use uuid::Uuid;

use super::{direct::Fast, enums::BoardRole, UserObj};
use crate::graphql::{
    context::{load_failed, Context},
    errors::GqlResult,
    scalars::BoardsScalar,
};

pub struct BoardMemberObj(pub BoardMember);

impl BoardMemberObj {
    /// The member's board, when the caller may read it.
    async fn check_read(&self, ctx: &Context, denied: &str) -> GqlResult<Board> {
        let board = ctx
            .loaders
            .boards
            .try_load(self.0.board_id)
            .await
            .map_err(load_failed)??;
        match board {
            Some(b) if ctx.can_read(&b).await? => Ok(b),
            _ => Err(AppError::forbidden(denied).into()),
        }
    }
}

#[graphql_object(name = "BoardMember", context = Context, scalar = BoardsScalar)]
impl BoardMemberObj {
    fn id(&self) -> Uuid {
        self.0.id
    }
    fn board_id(&self) -> Uuid {
        self.0.board_id
    }
    fn user_id(&self) -> Uuid {
        self.0.user_id
    }
    fn role(&self) -> GqlResult<BoardRole> {
        Ok(BoardRole::from_db(&self.0.role)?)
    }
    fn invited_by(&self) -> Option<Uuid> {
        self.0.invited_by
    }
    fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }

    async fn user(&self, ctx: &Context) -> GqlResult<Fast<UserObj>> {
        let board = self
            .check_read(ctx, "Access denied to board member information")
            .await?;
        let user = ctx
            .loaders
            .users
            .try_load(self.0.user_id)
            .await
            .map_err(load_failed)??
            .ok_or_else(|| AppError::not_found("User not found"))?;
        let visible = ctx.sees_identity_on(user.id, &board).await?;
        Ok(Fast(UserObj::new(user, visible)))
    }

    /// Who added this member; null when unknown or since deleted.
    async fn inviter(&self, ctx: &Context) -> GqlResult<Option<Fast<UserObj>>> {
        let Some(inviter) = self.0.invited_by else {
            return Ok(None);
        };
        let board = self
            .check_read(ctx, "Access denied to board member inviter information")
            .await?;
        let user = ctx
            .loaders
            .users
            .try_load(inviter)
            .await
            .map_err(load_failed)??;
        let Some(user) = user else {
            return Ok(None);
        };
        // Usually the owner; otherwise the inviter may have left the board since.
        let on_board = user.id == board.owner_id || {
            let members = ctx
                .loaders
                .members
                .try_load(board.id)
                .await
                .map_err(load_failed)??;
            members.iter().any(|m| m.user_id == user.id)
        };
        let visible = if on_board {
            ctx.sees_identity_on(user.id, &board).await?
        } else {
            ctx.sees_identity_of(user.id).await?
        };
        Ok(Some(Fast(UserObj::new(user, visible))))
    }
}
