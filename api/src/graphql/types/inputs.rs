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
