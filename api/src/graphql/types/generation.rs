//! `Generation` and `AdditionalFile`.

use bigdecimal::ToPrimitive;
use boards_shared::{db::models::Generation, domain::lineage, AppError};
use chrono::{DateTime, Utc};
use juniper::{graphql_object, GraphQLObject};
use serde_json::Value;
use uuid::Uuid;

use super::{
    enums::{ArtifactType, GenerationStatus},
    lineage::{AncestryNodeObj, ArtifactLineageObj, DescendantNodeObj},
    BoardObj, TagObj, UserObj,
};
use crate::graphql::{
    context::{load_failed, Context},
    errors::GqlResult,
    scalars::{BoardsScalar, Json},
};

pub struct GenerationObj {
    pub row: Generation,
    /// The JSON columns, shared with the response instead of copied into it.
    input_params: Json,
    output_metadata: Json,
}

impl GenerationObj {
    /// The artifact's (`storage_key`) or thumbnail's (`thumbnail_key`) URL, signed afresh when
    /// the store's URLs expire.
    pub fn url(
        &self,
        storage: &dyn boards_shared::storage::Storage,
        key_field: &str,
    ) -> Option<String> {
        let stored = match key_field {
            "thumbnail_key" => self.row.thumbnail_url.as_deref(),
            _ => self.row.storage_url.as_deref(),
        };
        boards_shared::storage::artifact_url(storage, stored, &self.row.output_metadata, key_field)
    }

    pub fn new(mut row: Generation) -> Self {
        let input_params = Json::new(std::mem::take(&mut row.input_params));
        let output_metadata = Json::new(std::mem::take(&mut row.output_metadata));
        Self {
            row,
            input_params,
            output_metadata,
        }
    }

    pub fn shared_input_params(&self) -> &Json {
        &self.input_params
    }

    pub fn shared_output_metadata(&self) -> &Json {
        &self.output_metadata
    }

    /// The complete row again (for computations that need every column).
    pub fn full_row(&self) -> Generation {
        let mut row = self.row.clone();
        row.input_params = self.input_params.0.as_ref().clone();
        row.output_metadata = self.output_metadata.0.as_ref().clone();
        row
    }
}

#[derive(Clone, Debug, GraphQLObject)]
#[graphql(name = "AdditionalFile", scalar = BoardsScalar)]
pub struct AdditionalFile {
    pub url: String,
    #[graphql(name = "type")]
    pub kind: String,
    pub metadata: Json,
}

fn additional_files(stored: &Value) -> Vec<AdditionalFile> {
    stored
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some(AdditionalFile {
                        url: item.get("url")?.as_str()?.to_string(),
                        kind: item.get("type")?.as_str()?.to_string(),
                        metadata: Json::new(
                            item.get("metadata")
                                .cloned()
                                .unwrap_or_else(|| serde_json::json!({})),
                        ),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

#[graphql_object(name = "Generation", context = Context, scalar = BoardsScalar)]
impl GenerationObj {
    fn id(&self) -> Uuid {
        self.row.id
    }
    fn tenant_id(&self) -> Uuid {
        self.row.tenant_id
    }
    fn board_id(&self) -> Uuid {
        self.row.board_id
    }
    fn user_id(&self) -> Uuid {
        self.row.user_id
    }
    fn generator_name(&self) -> &str {
        &self.row.generator_name
    }
    fn artifact_type(&self) -> GqlResult<ArtifactType> {
        Ok(ArtifactType::from_db(&self.row.artifact_type)?)
    }
    fn storage_url(&self, ctx: &Context) -> Option<String> {
        self.url(ctx.state.storage.as_ref(), "storage_key")
    }
    fn thumbnail_url(&self, ctx: &Context) -> Option<String> {
        self.url(ctx.state.storage.as_ref(), "thumbnail_key")
    }
    fn additional_files(&self) -> Vec<AdditionalFile> {
        additional_files(&self.row.additional_files)
    }
    fn input_params(&self) -> Json {
        self.input_params.clone()
    }
    fn output_metadata(&self) -> Json {
        self.output_metadata.clone()
    }
    fn external_job_id(&self) -> Option<&str> {
        self.row.external_job_id.as_deref()
    }
    fn status(&self) -> GqlResult<GenerationStatus> {
        Ok(GenerationStatus::from_db(&self.row.status)?)
    }
    /// Percent complete, 0 to 100.
    fn progress(&self) -> f64 {
        self.row.progress.to_f64().unwrap_or(0.0)
    }
    fn error_message(&self) -> Option<&str> {
        self.row.error_message.as_deref()
    }
    fn started_at(&self) -> Option<DateTime<Utc>> {
        self.row.started_at
    }
    fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.row.completed_at
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }

    async fn board(&self, ctx: &Context) -> GqlResult<BoardObj> {
        let board = ctx
            .loaders
            .boards
            .try_load(self.row.board_id)
            .await
            .map_err(load_failed)??;
        let board = board.ok_or_else(|| AppError::not_found("Generation board not found"))?;
        if !ctx.can_read(&board).await? {
            return Err(AppError::forbidden("Access denied to generation board").into());
        }
        Ok(BoardObj(board))
    }

    async fn user(&self, ctx: &Context) -> GqlResult<UserObj> {
        let user = ctx
            .loaders
            .users
            .try_load(self.row.user_id)
            .await
            .map_err(load_failed)??
            .ok_or_else(|| AppError::not_found("User not found"))?;
        ctx.user_obj(user).await
    }

    /// The generations this one was made from, as stored.
    fn input_artifacts(&self) -> Vec<ArtifactLineageObj> {
        lineage::entries(&self.row.input_artifacts)
            .into_iter()
            .map(ArtifactLineageObj)
            .collect()
    }

    /// This generation and, recursively, the generations its inputs came from.
    async fn ancestry(
        &self,
        ctx: &Context,
        #[graphql(default = 25)] max_depth: i32,
    ) -> GqlResult<AncestryNodeObj> {
        let mut conn = ctx.conn().await?;
        let tree = lineage::ancestry(
            &mut conn,
            self.full_row(),
            ctx.auth.tenant_id,
            ctx.viewer(),
            max_depth,
        )
        .await?;
        Ok(AncestryNodeObj(tree))
    }

    /// This generation and, recursively, the generations made from it.
    async fn descendants(
        &self,
        ctx: &Context,
        #[graphql(default = 25)] max_depth: i32,
    ) -> GqlResult<DescendantNodeObj> {
        let mut conn = ctx.conn().await?;
        let tree = lineage::descendants(
            &mut conn,
            self.full_row(),
            ctx.auth.tenant_id,
            ctx.viewer(),
            max_depth,
        )
        .await?;
        Ok(DescendantNodeObj(tree))
    }

    /// Tags on this generation, by name.
    async fn tags(&self, ctx: &Context) -> GqlResult<Vec<TagObj>> {
        let tags = ctx
            .loaders
            .generation_tags
            .try_load(self.row.id)
            .await
            .map_err(load_failed)??;
        Ok(tags.into_iter().map(TagObj).collect())
    }
}
