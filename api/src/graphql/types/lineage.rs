//! `ArtifactLineage`, `AncestryNode`, `DescendantNode`.

use boards_shared::domain::lineage::{LineageEntry, TreeNode};
use juniper::graphql_object;
use uuid::Uuid;

use super::{enums::ArtifactType, GenerationObj};
use crate::graphql::{
    context::{load_failed, Context},
    errors::GqlResult,
    scalars::BoardsScalar,
};

pub struct ArtifactLineageObj(pub LineageEntry);

#[graphql_object(name = "ArtifactLineage", context = Context, scalar = BoardsScalar)]
impl ArtifactLineageObj {
    fn generation_id(&self) -> GqlResult<Uuid> {
        self.0.id().ok_or_else(|| {
            boards_shared::AppError::internal(anyhow::anyhow!(
                "malformed generation id in input_artifacts: {:?}",
                self.0.generation_id
            ))
            .into()
        })
    }
    fn role(&self) -> &str {
        &self.0.role
    }
    fn artifact_type(&self) -> GqlResult<ArtifactType> {
        Ok(ArtifactType::from_db(&self.0.artifact_type)?)
    }
    /// The input generation; null when it no longer exists or is not readable.
    async fn generation(&self, ctx: &Context) -> GqlResult<Option<GenerationObj>> {
        let Some(id) = self.0.id() else {
            return Ok(None);
        };
        let Some(g) = ctx
            .loaders
            .generations
            .try_load(id)
            .await
            .map_err(load_failed)??
        else {
            return Ok(None);
        };
        Ok(ctx
            .readable_board(g.board_id)
            .await?
            .map(|_| GenerationObj::new(g)))
    }
}

pub struct AncestryNodeObj(pub TreeNode);

#[graphql_object(name = "AncestryNode", context = Context, scalar = BoardsScalar)]
impl AncestryNodeObj {
    fn generation(&self) -> GenerationObj {
        GenerationObj::new(self.0.generation.clone())
    }
    fn depth(&self) -> i32 {
        self.0.depth
    }
    fn role(&self) -> Option<&str> {
        self.0.role.as_deref()
    }
    fn parents(&self) -> Vec<AncestryNodeObj> {
        self.0.next.iter().cloned().map(AncestryNodeObj).collect()
    }
}

pub struct DescendantNodeObj(pub TreeNode);

#[graphql_object(name = "DescendantNode", context = Context, scalar = BoardsScalar)]
impl DescendantNodeObj {
    fn generation(&self) -> GenerationObj {
        GenerationObj::new(self.0.generation.clone())
    }
    fn depth(&self) -> i32 {
        self.0.depth
    }
    fn role(&self) -> Option<&str> {
        self.0.role.as_deref()
    }
    fn children(&self) -> Vec<DescendantNodeObj> {
        self.0.next.iter().cloned().map(DescendantNodeObj).collect()
    }
}
