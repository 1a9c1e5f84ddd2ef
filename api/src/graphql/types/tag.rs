//! `Tag`.

use boards_shared::db::models::Tag;
use chrono::{DateTime, Utc};
use juniper::graphql_object;
use uuid::Uuid;

use crate::graphql::{
    context::Context,
    scalars::{BoardsScalar, Json},
};

pub struct TagObj(pub Tag);

#[graphql_object(name = "Tag", context = Context, scalar = BoardsScalar)]
impl TagObj {
    fn id(&self) -> Uuid {
        self.0.id
    }
    fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
    fn name(&self) -> &str {
        &self.0.name
    }
    fn slug(&self) -> &str {
        &self.0.slug
    }
    fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
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
}
