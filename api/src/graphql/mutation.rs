//! The `Mutation` root. Member mutations take the Boards client's shapes (contract §1.6).

use boards_shared::{
    domain::{
        boards::{self as board_ops, CreateBoard, UpdateBoard},
        generations::{self as generation_ops, CreateGeneration},
        members,
        tags::{self as tag_ops, CreateTag, UpdateTag},
        text::check_opt_text,
        uploads, webhooks as webhook_ops,
    },
    events::BoardEvent,
    generators::ArtifactKind,
    ratelimit::Limit,
    AppError,
};
use juniper::graphql_object;
use uuid::Uuid;

use super::{
    context::Context,
    errors::GqlResult,
    scalars::{BoardsScalar, Json},
    types::{
        enums::BoardRole,
        inputs::{
            CreateBoardInput, CreateGenerationInput, CreateTagInput, UpdateBoardInput,
            UpdateTagInput, UploadArtifactInput,
        },
        webhook::{
            CreateWebhookInput, UpdateWebhookInput, WebhookDeliveryObj, WebhookObj,
            WebhookSecretObj,
        },
        BoardMemberObj, BoardObj, GenerationObj, OperationResult, TagObj,
    },
};

pub struct Mutation;

async fn regenerate_as(ctx: &Context, id: Uuid, what: &str) -> GqlResult<GenerationObj> {
    let actor = ctx.actor(what)?;
    ctx.state
        .limits
        .check(Limit::Generation, actor.user_id)
        .await?;
    let mut conn = ctx.conn().await?;
    let generation = generation_ops::regenerate(
        &mut conn,
        &actor,
        &ctx.state.generators,
        id,
        ctx.origin.clone(),
    )
    .await?;
    ctx.state.relay.wake();
    crate::sse::announce_generation_created(&ctx.state, &generation);
    Ok(GenerationObj::new(generation))
}

#[graphql_object(context = Context, scalar = BoardsScalar)]
impl Mutation {
    async fn create_board(ctx: &Context, input: CreateBoardInput) -> GqlResult<BoardObj> {
        let actor = ctx.actor("create a board")?;
        let mut conn = ctx.conn().await?;
        let board = board_ops::create_board(
            &mut conn,
            &actor,
            CreateBoard {
                title: input.title,
                description: input.description,
                is_public: input.is_public,
                settings: input.settings.map(Json::into_value),
            },
        )
        .await?;
        Ok(BoardObj(board))
    }

    async fn update_board(ctx: &Context, input: UpdateBoardInput) -> GqlResult<BoardObj> {
        let actor = ctx.actor("update a board")?;
        let mut conn = ctx.conn().await?;
        let made_private = input.is_public == Some(false);
        let board = board_ops::update_board(
            &mut conn,
            &actor,
            input.id,
            UpdateBoard {
                title: input.title,
                description: input.description,
                is_public: input.is_public,
                settings: input.settings.map(Json::into_value),
            },
        )
        .await?;
        if made_private {
            crate::sse::announce_access_change(&ctx.state, board.id);
        }
        crate::sse::announce_board(&ctx.state, board.id, BoardEvent::BoardUpdated);
        Ok(BoardObj(board))
    }

    async fn delete_board(ctx: &Context, id: Uuid) -> GqlResult<OperationResult> {
        let actor = ctx.actor("delete a board")?;
        let mut conn = ctx.conn().await?;
        let metadata =
            boards_shared::db::models::generations::metadata_of_board(&mut conn, id).await?;
        board_ops::delete_board(&mut conn, &actor, id).await?;
        crate::sse::announce_board(&ctx.state, id, BoardEvent::BoardDeleted);
        crate::sse::announce_access_change(&ctx.state, id);
        // The board's artifacts go with it.
        let keys = metadata
            .iter()
            .flat_map(boards_shared::storage::object_keys)
            .collect();
        boards_shared::storage::remove_in_background(ctx.state.storage.clone(), keys);
        Ok(OperationResult::SUCCESS)
    }

    /// Adds the user with `email` (in the board's tenant) as a member.
    async fn add_board_member(
        ctx: &Context,
        board_id: Uuid,
        email: String,
        role: BoardRole,
    ) -> GqlResult<BoardMemberObj> {
        let actor = ctx.actor("add a board member")?;
        let mut conn = ctx.conn().await?;
        let member =
            members::add_member_by_email(&mut conn, &actor, board_id, &email, role.into()).await?;
        crate::sse::announce_board(&ctx.state, board_id, BoardEvent::MembersChanged);
        Ok(BoardMemberObj(member))
    }

    /// Changes the role of the membership `id`.
    async fn update_board_member_role(
        ctx: &Context,
        id: Uuid,
        role: BoardRole,
    ) -> GqlResult<BoardMemberObj> {
        let actor = ctx.actor("change a member's role")?;
        let mut conn = ctx.conn().await?;
        let member = members::update_member_role(&mut conn, &actor, id, role.into()).await?;
        crate::sse::announce_access_change(&ctx.state, member.board_id);
        crate::sse::announce_board(&ctx.state, member.board_id, BoardEvent::MembersChanged);
        Ok(BoardMemberObj(member))
    }

    /// Removes the membership `id`.
    async fn remove_board_member(ctx: &Context, id: Uuid) -> GqlResult<OperationResult> {
        let actor = ctx.actor("remove a board member")?;
        let mut conn = ctx.conn().await?;
        let removed = members::remove_member(&mut conn, &actor, id).await?;
        crate::sse::announce_access_change(&ctx.state, removed.board_id);
        crate::sse::announce_board(&ctx.state, removed.board_id, BoardEvent::MembersChanged);
        Ok(OperationResult::SUCCESS)
    }

    /// Creates a pending generation; its job is queued in the same transaction.
    async fn create_generation(
        ctx: &Context,
        input: CreateGenerationInput,
    ) -> GqlResult<GenerationObj> {
        let actor = ctx.actor("create a generation")?;
        let generation = crate::rest::jobs::submit_generation(
            &ctx.state,
            &actor,
            CreateGeneration {
                board_id: input.board_id,
                generator_name: input.generator_name,
                artifact_type: input.artifact_type.as_db().to_string(),
                input_params: input.input_params.into_value(),
            },
            ctx.origin.clone(),
        )
        .await?;
        Ok(GenerationObj::new(generation))
    }

    /// Cancels a pending or processing generation.
    async fn cancel_generation(ctx: &Context, id: Uuid) -> GqlResult<GenerationObj> {
        let actor = ctx.actor("cancel a generation")?;
        let mut conn = ctx.conn().await?;
        let generation = generation_ops::cancel_generation(&mut conn, &actor, id).await?;
        drop(conn);
        crate::rest::progress::announce_cancel(&ctx.state, &generation);
        Ok(GenerationObj::new(generation))
    }

    async fn delete_generation(ctx: &Context, id: Uuid) -> GqlResult<bool> {
        let actor = ctx.actor("delete a generation")?;
        let mut conn = ctx.conn().await?;
        let deleted = generation_ops::delete_generation(&mut conn, &actor, id).await?;
        boards_shared::storage::remove_in_background(
            ctx.state.storage.clone(),
            boards_shared::storage::object_keys(&deleted.output_metadata),
        );
        if matches!(deleted.status.as_str(), "pending" | "processing") {
            ctx.state
                .events
                .publish(boards_shared::events::Event::Cancel(id));
        }
        crate::sse::announce_board(
            &ctx.state,
            deleted.board_id,
            BoardEvent::GenerationDeleted { generation_id: id },
        );
        Ok(true)
    }

    /// A new generation with the same generator and inputs.
    async fn regenerate(ctx: &Context, id: Uuid) -> GqlResult<GenerationObj> {
        regenerate_as(ctx, id, "regenerate").await
    }

    /// The Boards client's name for `regenerate`.
    async fn retry_generation(ctx: &Context, id: Uuid) -> GqlResult<GenerationObj> {
        regenerate_as(ctx, id, "retry a generation").await
    }

    /// Imports an artifact from a URL (contract §2.7): fetched through the SSRF guard,
    /// streamed into storage, recorded as a completed generation.
    async fn upload_artifact(
        ctx: &Context,
        input: UploadArtifactInput,
    ) -> GqlResult<GenerationObj> {
        let actor = ctx.actor("upload")?;
        ctx.state.limits.check(Limit::Upload, actor.user_id).await?;
        check_opt_text("fileUrl", input.file_url.as_deref())?;
        check_opt_text("originalFilename", input.original_filename.as_deref())?;
        check_opt_text("userDescription", input.user_description.as_deref())?;
        let Some(url) = input.file_url.clone().filter(|u| !u.trim().is_empty()) else {
            return Err(AppError::bad_input("file_url is required").into());
        };
        let kind = ArtifactKind::parse(input.artifact_type.as_db())
            .ok_or_else(|| AppError::bad_input("Unsupported artifact type"))?;
        let uploader = &ctx.state.uploader;
        let prepared = {
            let mut conn = ctx.conn().await?;
            uploader
                .prepare(&mut conn, &actor, input.board_id, kind)
                .await?
        };
        let fetched = ctx
            .state
            .fetcher
            .get(&url)
            .await
            .map_err(|e| AppError::bad_input(e.to_string()))?;
        let filename = input.original_filename.clone().unwrap_or_else(|| {
            url::Url::parse(&url)
                .ok()
                .and_then(|u| {
                    u.path_segments()
                        .and_then(|mut s| s.next_back().map(str::to_string))
                })
                .unwrap_or_default()
        });
        let declared = fetched.content_type.clone();
        let details = uploads::Details {
            user_description: input.user_description.clone().filter(|d| !d.is_empty()),
            parent_generation_id: input.parent_generation_id,
        };
        let source = uploads::Source::Url(url);
        let stored = uploader
            .store(
                prepared.clone(),
                source.clone(),
                &filename,
                declared.as_deref(),
                fetched.body,
                fetched.content_length,
            )
            .await;
        let mut conn = match ctx.conn().await {
            Ok(conn) => conn,
            Err(e) => {
                if let Ok(stored) = &stored {
                    uploader.discard(stored).await;
                }
                return Err(e);
            }
        };
        match stored {
            Ok(stored) => {
                let generation = uploader.record(&mut conn, stored, details).await?;
                crate::sse::announce_generation_created(&ctx.state, &generation);
                Ok(GenerationObj::new(generation))
            }
            Err(error) if uploads::is_store_failure(&error) => {
                let failed = uploader
                    .record_failure(
                        &mut conn,
                        &prepared,
                        &uploads::Origin {
                            source: &source,
                            filename: &filename,
                            declared_type: declared.as_deref(),
                        },
                        &details,
                        error,
                    )
                    .await;
                Err(failed.error.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn create_tag(ctx: &Context, input: CreateTagInput) -> GqlResult<TagObj> {
        let actor = ctx.actor("create a tag")?;
        let mut conn = ctx.conn().await?;
        let tag = tag_ops::create_tag(
            &mut conn,
            &actor,
            CreateTag {
                name: input.name,
                slug: input.slug,
                description: input.description,
                metadata: input.metadata.map(Json::into_value),
            },
        )
        .await?;
        Ok(TagObj(tag))
    }

    async fn update_tag(ctx: &Context, input: UpdateTagInput) -> GqlResult<TagObj> {
        let actor = ctx.actor("update a tag")?;
        let mut conn = ctx.conn().await?;
        let tag = tag_ops::update_tag(
            &mut conn,
            &actor,
            input.id,
            UpdateTag {
                name: input.name,
                slug: input.slug,
                description: input.description,
                metadata: input.metadata.map(Json::into_value),
            },
        )
        .await?;
        Ok(TagObj(tag))
    }

    async fn delete_tag(ctx: &Context, id: Uuid) -> GqlResult<bool> {
        let actor = ctx.actor("delete a tag")?;
        let mut conn = ctx.conn().await?;
        tag_ops::delete_tag(&mut conn, &actor, id).await?;
        Ok(true)
    }

    async fn add_tag_to_generation(
        ctx: &Context,
        generation_id: Uuid,
        tag_id: Uuid,
    ) -> GqlResult<TagObj> {
        let actor = ctx.actor("tag a generation")?;
        let mut conn = ctx.conn().await?;
        let (tag, board) =
            tag_ops::add_tag_to_generation(&mut conn, &actor, generation_id, tag_id).await?;
        let event = BoardEvent::GenerationTagsChanged {
            generation_id,
            tag_id,
            tagged: true,
        };
        crate::sse::announce_board(&ctx.state, board, event);
        Ok(TagObj(tag))
    }

    async fn remove_tag_from_generation(
        ctx: &Context,
        generation_id: Uuid,
        tag_id: Uuid,
    ) -> GqlResult<bool> {
        let actor = ctx.actor("untag a generation")?;
        let mut conn = ctx.conn().await?;
        let board =
            tag_ops::remove_tag_from_generation(&mut conn, &actor, generation_id, tag_id).await?;
        let event = BoardEvent::GenerationTagsChanged {
            generation_id,
            tag_id,
            tagged: false,
        };
        crate::sse::announce_board(&ctx.state, board, event);
        Ok(true)
    }

    /// Registers an endpoint for a board's events (board owner or admin). The answer holds
    /// the signing secret, shown this once.
    async fn create_webhook(
        ctx: &Context,
        input: CreateWebhookInput,
    ) -> GqlResult<WebhookSecretObj> {
        let actor = ctx.actor("create a webhook")?;
        let mut conn = ctx.conn().await?;
        let webhook = webhook_ops::create(
            &mut conn,
            &actor,
            &ctx.state.webhooks,
            webhook_ops::CreateWebhook {
                board_id: input.board_id,
                url: input.url,
                event_types: input.event_types,
                description: input.description,
                enabled: input.enabled.unwrap_or(true),
            },
        )
        .await?;
        Ok(WebhookSecretObj(webhook))
    }

    async fn update_webhook(
        ctx: &Context,
        id: Uuid,
        input: UpdateWebhookInput,
    ) -> GqlResult<WebhookObj> {
        let actor = ctx.actor("update a webhook")?;
        let mut conn = ctx.conn().await?;
        let webhook = webhook_ops::update(
            &mut conn,
            &actor,
            &ctx.state.webhooks,
            id,
            webhook_ops::UpdateWebhook {
                url: input.url,
                event_types: input.event_types,
                description: input.description,
                enabled: input.enabled,
            },
        )
        .await?;
        Ok(WebhookObj(webhook))
    }

    async fn delete_webhook(ctx: &Context, id: Uuid) -> GqlResult<bool> {
        let actor = ctx.actor("delete a webhook")?;
        let mut conn = ctx.conn().await?;
        webhook_ops::delete(&mut conn, &actor, id).await?;
        Ok(true)
    }

    /// A new signing secret, shown this once; the previous one keeps signing for
    /// `BOARDS_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS` so that receivers can switch.
    async fn rotate_webhook_secret(ctx: &Context, id: Uuid) -> GqlResult<WebhookSecretObj> {
        let actor = ctx.actor("rotate a webhook secret")?;
        let mut conn = ctx.conn().await?;
        let webhook =
            webhook_ops::rotate_secret(&mut conn, &actor, &ctx.state.webhooks, id).await?;
        Ok(WebhookSecretObj(webhook))
    }

    /// Sends a `webhook.test` event to the endpoint.
    async fn send_test_webhook(ctx: &Context, id: Uuid) -> GqlResult<WebhookDeliveryObj> {
        let actor = ctx.actor("send a test webhook")?;
        let mut conn = ctx.conn().await?;
        let delivery = webhook_ops::send_test(&mut conn, &actor, id).await?;
        ctx.state.relay.wake();
        Ok(WebhookDeliveryObj(delivery))
    }

    /// Sends a delivery again, with the same `webhook-id`.
    async fn resend_webhook_delivery(ctx: &Context, id: Uuid) -> GqlResult<WebhookDeliveryObj> {
        let actor = ctx.actor("resend a webhook delivery")?;
        let mut conn = ctx.conn().await?;
        let delivery = webhook_ops::resend(&mut conn, &actor, id).await?;
        ctx.state.relay.wake();
        Ok(WebhookDeliveryObj(delivery))
    }
}
