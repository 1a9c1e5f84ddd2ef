//! The `Query` root.

use boards_shared::{
    db::models::{
        boards::{self, BoardRelation, BoardSort},
        generations::{self, RecentFilter},
        tags, users,
    },
    domain::{
        boards as board_ops,
        paging::page,
        text::{check_opt_text, check_text},
        webhooks as webhook_ops,
    },
};
use juniper::graphql_object;
use uuid::Uuid;

use super::{
    context::Context,
    errors::GqlResult,
    scalars::BoardsScalar,
    types::{
        enums::{ArtifactType, BoardQueryRole, GenerationStatus, SortOrder},
        generator::GeneratorInfoObj,
        webhook::{WebhookDeliveryObj, WebhookObj},
        BoardObj, GenerationList, GenerationObj, TagObj, UserObj,
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
        ctx.auth.user.clone().map(|u| UserObj::new(u, true))
    }

    /// A user of the caller's tenant (or the caller); null otherwise.
    async fn user(ctx: &Context, id: Uuid) -> GqlResult<Option<UserObj>> {
        let Some(me) = ctx.auth.user.as_ref() else {
            return Ok(None);
        };
        if me.id == id {
            return Ok(Some(UserObj::new(me.clone(), true)));
        }
        let mut conn = ctx.conn().await?;
        let user = users::find(&mut conn, id).await?;
        drop(conn);
        match user.filter(|u| u.tenant_id == me.tenant_id) {
            Some(u) => Ok(Some(ctx.user_obj(u).await?)),
            None => Ok(None),
        }
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
        check_text("Search query", &query)?;
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        let mut conn = ctx.conn().await?;
        let rows = boards::search(&mut conn, &query, ctx.viewer(), limit, offset).await?;
        drop(conn);
        boards_out(ctx, rows).await
    }

    /// A generation whose board the caller may read; null otherwise.
    async fn generation(ctx: &Context, id: Uuid) -> GqlResult<Option<GenerationObj>> {
        let found = ctx
            .loaders
            .generations
            .try_load(id)
            .await
            .map_err(super::context::load_failed)??;
        let Some(generation) = found else {
            return Ok(None);
        };
        Ok(ctx
            .readable_board(generation.board_id)
            .await?
            .map(|_| GenerationObj::new(generation)))
    }

    /// Newest generations on boards the caller owns, is a member of, or that are public.
    async fn recent_generations(
        ctx: &Context,
        #[graphql(default)] board_id: Option<Uuid>,
        #[graphql(default)] status: Option<GenerationStatus>,
        #[graphql(default)] artifact_type: Option<ArtifactType>,
        #[graphql(default = 50)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
    ) -> GqlResult<GenerationList> {
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        let Some(viewer) = ctx.viewer() else {
            return Ok(GenerationList(vec![]));
        };
        let filter = RecentFilter {
            board_id,
            status: status.map(|s| s.as_db().to_string()),
            artifact_type: artifact_type.map(|t| t.as_db().to_string()),
        };
        let mut conn = ctx.conn().await?;
        let rows = generations::recent(&mut conn, viewer, &filter, limit, offset).await?;
        Ok(GenerationList(
            rows.into_iter().map(GenerationObj::new).collect(),
        ))
    }

    /// A board's generations, newest first (the client's `GetGenerations`); without `boardId`,
    /// like `recentGenerations`.
    async fn generations(
        ctx: &Context,
        #[graphql(default)] board_id: Option<Uuid>,
        #[graphql(default = 50)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
    ) -> GqlResult<GenerationList> {
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        let mut conn = ctx.conn().await?;
        let rows = match board_id {
            Some(board_id) => {
                match board_ops::readable_board(&mut conn, ctx.viewer(), board_id).await? {
                    Some(_) => {
                        generations::list_for_board(&mut conn, board_id, limit, offset).await?
                    }
                    None => vec![],
                }
            }
            None => match ctx.viewer() {
                Some(viewer) => {
                    generations::recent(&mut conn, viewer, &RecentFilter::default(), limit, offset)
                        .await?
                }
                None => vec![],
            },
        };
        Ok(GenerationList(
            rows.into_iter().map(GenerationObj::new).collect(),
        ))
    }

    /// Registered generators, in configuration order; `artifactType` is the lower-case type.
    fn generators(
        ctx: &Context,
        #[graphql(default)] artifact_type: Option<String>,
    ) -> GqlResult<Vec<GeneratorInfoObj>> {
        check_opt_text("artifactType", artifact_type.as_deref())?;
        Ok(ctx
            .state
            .generators
            .list(artifact_type.as_deref())
            .cloned()
            .map(GeneratorInfoObj)
            .collect())
    }

    /// Tags of the caller's tenant, by name.
    async fn tags(
        ctx: &Context,
        #[graphql(default = 100)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
    ) -> GqlResult<Vec<TagObj>> {
        let (limit, offset) = page(limit, offset, 100, ctx.max_page_size())?;
        if ctx.viewer().is_none() {
            return Ok(vec![]);
        }
        let mut conn = ctx.conn().await?;
        let rows = tags::list(&mut conn, ctx.auth.tenant_id, limit, offset).await?;
        Ok(rows.into_iter().map(TagObj).collect())
    }

    async fn tag(ctx: &Context, id: Uuid) -> GqlResult<Option<TagObj>> {
        if ctx.viewer().is_none() {
            return Ok(None);
        }
        let mut conn = ctx.conn().await?;
        Ok(tags::find_in_tenant(&mut conn, ctx.auth.tenant_id, id)
            .await?
            .map(TagObj))
    }

    /// The tag with exactly this slug in the caller's tenant.
    async fn tag_by_slug(ctx: &Context, slug: String) -> GqlResult<Option<TagObj>> {
        check_text("Tag slug", &slug)?;
        if ctx.viewer().is_none() {
            return Ok(None);
        }
        let mut conn = ctx.conn().await?;
        Ok(tags::find_by_slug(&mut conn, ctx.auth.tenant_id, &slug)
            .await?
            .map(TagObj))
    }

    /// A board's webhooks (its owner and admins only).
    async fn webhooks(ctx: &Context, board_id: Uuid) -> GqlResult<Vec<WebhookObj>> {
        let actor = ctx.actor("list webhooks")?;
        let mut conn = ctx.conn().await?;
        let rows = webhook_ops::list(&mut conn, &actor, board_id).await?;
        Ok(rows.into_iter().map(WebhookObj).collect())
    }

    /// A webhook's deliveries, newest first (its board's owner and admins only).
    async fn webhook_deliveries(
        ctx: &Context,
        webhook_id: Uuid,
        #[graphql(default = 50)] limit: Option<i32>,
        #[graphql(default = 0)] offset: Option<i32>,
    ) -> GqlResult<Vec<WebhookDeliveryObj>> {
        let actor = ctx.actor("list webhook deliveries")?;
        let (limit, offset) = page(limit, offset, 50, ctx.max_page_size())?;
        let mut conn = ctx.conn().await?;
        let rows = webhook_ops::deliveries(&mut conn, &actor, webhook_id, limit, offset).await?;
        Ok(rows.into_iter().map(WebhookDeliveryObj).collect())
    }
}
