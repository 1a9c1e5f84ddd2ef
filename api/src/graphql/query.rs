//! The `Query` root.

use boards_shared::{
    db::models::{
        boards::{self, BoardRelation, BoardSort},
        users,
    },
    domain::{boards as board_ops, paging::page},
};
use juniper::graphql_object;
use uuid::Uuid;

use super::{
    context::Context,
    errors::GqlResult,
    scalars::BoardsScalar,
    types::{
        enums::{BoardQueryRole, SortOrder},
        BoardObj, UserObj,
    },
};

pub struct Query;

/// Board lists prime the access loaders so nested fields need no per-board queries.
async fn boards_out(
    ctx: &Context,
    rows: Vec<boards_shared::db::models::Board>,
) -> GqlResult<Vec<BoardObj>> {
    ctx.prime_roles(&rows).await?;
    Ok(rows.into_iter().map(BoardObj).collect())
}

#[graphql_object(context = Context, scalar = BoardsScalar)]
impl Query {
    /// The caller; null when anonymous.
    fn me(ctx: &Context) -> Option<UserObj> {
        ctx.auth.user.clone().map(UserObj)
    }

    /// A user of the caller's tenant (or the caller); null otherwise.
    async fn user(ctx: &Context, id: Uuid) -> GqlResult<Option<UserObj>> {
        let Some(me) = ctx.auth.user.as_ref() else {
            return Ok(None);
        };
        if me.id == id {
            return Ok(Some(UserObj(me.clone())));
        }
        let mut conn = ctx.conn().await?;
        let user = users::find(&mut conn, id).await?;
        Ok(user.filter(|u| u.tenant_id == me.tenant_id).map(UserObj))
    }

    /// A board the caller may read; null when missing or not readable.
    async fn board(ctx: &Context, id: Uuid) -> GqlResult<Option<BoardObj>> {
        let mut conn = ctx.conn().await?;
        let Some((board, relation)) =
            board_ops::readable_board(&mut conn, ctx.viewer(), id).await?
        else {
            return Ok(None);
        };
        drop(conn);
        ctx.prime_relation(&board, relation).await;
        Ok(Some(BoardObj(board)))
    }

    /// Boards the caller owns and/or is a member of.
    async fn my_boards(
        ctx: &Context,
        #[graphql(default = 50)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
        #[graphql(default)] role: Option<BoardQueryRole>,
        #[graphql(default)] sort: Option<SortOrder>,
    ) -> GqlResult<Vec<BoardObj>> {
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        let Some(user_id) = ctx.viewer() else {
            return Ok(vec![]);
        };
        let relation = role.map_or(BoardRelation::Any, Into::into);
        let sort = sort.map_or(BoardSort::UpdatedDesc, Into::into);
        let mut conn = ctx.conn().await?;
        let rows = boards::list_for_user(&mut conn, user_id, relation, sort, limit, offset).await?;
        drop(conn);
        boards_out(ctx, rows).await
    }

    /// Public boards of every tenant.
    async fn public_boards(
        ctx: &Context,
        #[graphql(default = 50)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
        #[graphql(default)] sort: Option<SortOrder>,
    ) -> GqlResult<Vec<BoardObj>> {
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        let sort = sort.map_or(BoardSort::UpdatedDesc, Into::into);
        let mut conn = ctx.conn().await?;
        let rows = boards::list_public(&mut conn, sort, limit, offset).await?;
        drop(conn);
        boards_out(ctx, rows).await
    }

    /// Boards whose title or description contains `query` (case-insensitive, literal).
    async fn search_boards(
        ctx: &Context,
        query: String,
        #[graphql(default = 50)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
    ) -> GqlResult<Vec<BoardObj>> {
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        let mut conn = ctx.conn().await?;
        let rows = boards::search(&mut conn, &query, ctx.viewer(), limit, offset).await?;
        drop(conn);
        boards_out(ctx, rows).await
    }
}
