//! `BoardMember`.

use boards_shared::{db::models::BoardMember, AppError};
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
    async fn check_read(&self, ctx: &Context, denied: &str) -> GqlResult<()> {
        let board = ctx
            .loaders
            .boards
            .try_load(self.0.board_id)
            .await
            .map_err(load_failed)??;
        match board {
            Some(b) if ctx.can_read(&b).await? => Ok(()),
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
        self.check_read(ctx, "Access denied to board member information")
            .await?;
        let user = ctx
            .loaders
            .users
            .try_load(self.0.user_id)
            .await
            .map_err(load_failed)??;
        user.map(|u| Fast(UserObj(u)))
            .ok_or_else(|| AppError::not_found("User not found").into())
    }

    /// Who added this member; null when unknown or since deleted.
    async fn inviter(&self, ctx: &Context) -> GqlResult<Option<Fast<UserObj>>> {
        let Some(inviter) = self.0.invited_by else {
            return Ok(None);
        };
        self.check_read(ctx, "Access denied to board member inviter information")
            .await?;
        let user = ctx
            .loaders
            .users
            .try_load(inviter)
            .await
            .map_err(load_failed)??;
        Ok(user.map(|u| Fast(UserObj(u))))
    }
}
