//! `Board`.

use boards_shared::{
    db::models::{generations, Board},
    domain::paging::page,
    AppError,
};
use chrono::{DateTime, Utc};
use juniper::graphql_object;
use uuid::Uuid;

use super::{direct::Fast, BoardMemberObj, GenerationList, GenerationObj, UserObj};
use crate::graphql::{
    context::{load_failed, Context},
    errors::GqlResult,
    scalars::{BoardsScalar, Json},
};

pub struct BoardObj(pub Board);

#[graphql_object(name = "Board", context = Context, scalar = BoardsScalar)]
impl BoardObj {
    fn id(&self) -> Uuid {
        self.0.id
    }
    fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
    fn owner_id(&self) -> Uuid {
        self.0.owner_id
    }
    fn title(&self) -> &str {
        &self.0.title
    }
    fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    fn is_public(&self) -> bool {
        self.0.is_public
    }
    fn settings(&self) -> Json {
        Json::new(self.0.settings.clone())
    }
    fn metadata(&self) -> Json {
        Json::new(self.0.metadata.clone())
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    async fn owner(&self, ctx: &Context) -> GqlResult<Fast<UserObj>> {
        if !ctx.can_read(&self.0).await? {
            return Err(AppError::forbidden("Access denied to board owner information").into());
        }
        let owner = ctx
            .loaders
            .users
            .try_load(self.0.owner_id)
            .await
            .map_err(load_failed)??;
        let owner = owner.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("board owner {} missing", self.0.owner_id))
        })?;
        let visible = ctx.sees_identity_on(owner.id, &self.0).await?;
        Ok(Fast(UserObj::new(owner, visible)))
    }

    /// The members (the owner is never listed), in joining order.
    async fn members(&self, ctx: &Context) -> GqlResult<Vec<BoardMemberObj>> {
        if !ctx.can_read(&self.0).await? {
            return Err(AppError::forbidden("Access denied to board member information").into());
        }
        ctx.loaders
            .boards
            .prime(self.0.id, Ok(Some(self.0.clone())))
            .await;
        let members = ctx
            .loaders
            .members
            .try_load(self.0.id)
            .await
            .map_err(load_failed)??;
        Ok(members.into_iter().map(BoardMemberObj).collect())
    }

    /// The board's generations, newest first; empty when the board is not readable.
    async fn generations(
        &self,
        ctx: &Context,
        #[graphql(default = 50)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
    ) -> GqlResult<GenerationList> {
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        if !ctx.can_read(&self.0).await? {
            return Ok(GenerationList(vec![]));
        }
        let mut conn = ctx.conn().await?;
        let rows = generations::list_for_board(&mut conn, self.0.id, limit, offset).await?;
        Ok(GenerationList(
            rows.into_iter().map(GenerationObj::new).collect(),
        ))
    }

    /// Number of generations; 0 when the board is not readable.
    async fn generation_count(&self, ctx: &Context) -> GqlResult<i32> {
        if !ctx.can_read(&self.0).await? {
            return Ok(0);
        }
        let n = ctx
            .loaders
            .generation_counts
            .try_load(self.0.id)
            .await
            .map_err(load_failed)??;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}
