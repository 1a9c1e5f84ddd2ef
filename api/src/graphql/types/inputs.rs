//! GraphQL input objects.

use juniper::GraphQLInputObject;
use uuid::Uuid;

use crate::graphql::scalars::{BoardsScalar, Json};

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct CreateBoardInput {
    pub title: String,
    #[graphql(default)]
    pub description: Option<String>,
    #[graphql(default = false)]
    pub is_public: bool,
    #[graphql(default)]
    pub settings: Option<Json>,
}

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct UpdateBoardInput {
    pub id: Uuid,
    #[graphql(default)]
    pub title: Option<String>,
    #[graphql(default)]
    pub description: Option<String>,
    #[graphql(default)]
    pub is_public: Option<bool>,
    #[graphql(default)]
    pub settings: Option<Json>,
}

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct CreateGenerationInput {
    pub board_id: Uuid,
    pub generator_name: String,
    pub artifact_type: super::enums::ArtifactType,
    pub input_params: Json,
}

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct UploadArtifactInput {
    pub board_id: Uuid,
    pub artifact_type: super::enums::ArtifactType,
    #[graphql(default)]
    pub file_url: Option<String>,
    #[graphql(default)]
    pub original_filename: Option<String>,
    #[graphql(default)]
    pub user_description: Option<String>,
    #[graphql(default)]
    pub parent_generation_id: Option<Uuid>,
}

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct CreateTagInput {
    pub name: String,
    #[graphql(default)]
    pub slug: Option<String>,
    #[graphql(default)]
    pub description: Option<String>,
    #[graphql(default)]
    pub metadata: Option<Json>,
}

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct UpdateTagInput {
    pub id: Uuid,
    #[graphql(default)]
    pub name: Option<String>,
    #[graphql(default)]
    pub slug: Option<String>,
    #[graphql(default)]
    pub description: Option<String>,
    #[graphql(default)]
    pub metadata: Option<Json>,
}
