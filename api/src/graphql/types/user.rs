//! `User`.

use boards_shared::{
    db::models::{board_members, boards, User},
    domain::access,
};
use chrono::{DateTime, Utc};
use juniper::graphql_object;
use uuid::Uuid;

use super::BoardObj;
use crate::graphql::{context::Context, errors::GqlResult, scalars::BoardsScalar};

pub struct UserObj(pub User);

impl super::direct::DirectFields for UserObj {
    const TYPE: &'static str = "User";

    fn direct(&self, field: &str) -> Option<juniper::Value<BoardsScalar>> {
        use juniper::Value;
        let text = |s: &str| Value::scalar(s.to_string());
        let opt = |s: &Option<String>| s.as_deref().map_or(Value::Null, text);
        let u = &self.0;
        Some(match field {
            "id" => Value::scalar(u.id.hyphenated().to_string()),
            "tenantId" => Value::scalar(u.tenant_id.hyphenated().to_string()),
            "authProvider" => text(&u.auth_provider),
            "authSubject" => text(&u.auth_subject),
            "email" => opt(&u.email),
            "displayName" => opt(&u.display_name),
            "avatarUrl" => opt(&u.avatar_url),
            "createdAt" => Value::scalar(crate::graphql::scalars::isoformat(&u.created_at)),
            "updatedAt" => Value::scalar(crate::graphql::scalars::isoformat(&u.updated_at)),
            _ => return None,
        })
    }
}

#[graphql_object(name = "User", context = Context, scalar = BoardsScalar)]
impl UserObj {
    fn id(&self) -> Uuid {
        self.0.id
    }
    fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
    fn auth_provider(&self) -> &str {
        &self.0.auth_provider
    }
    fn auth_subject(&self) -> &str {
        &self.0.auth_subject
    }
    fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }
    fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Boards this user owns that the caller may read, newest first.
    async fn boards(&self, ctx: &Context) -> GqlResult<Vec<BoardObj>> {
        let mut conn = ctx.conn().await?;
        let owned = boards::owned_by(&mut conn, self.0.id).await?;
        let visible = access::readable(&mut conn, owned, ctx.viewer()).await?;
        Ok(visible.into_iter().map(BoardObj).collect())
    }

    /// Boards this user is a member of that the caller may read.
    async fn member_boards(&self, ctx: &Context) -> GqlResult<Vec<BoardObj>> {
        let mut conn = ctx.conn().await?;
        let ids = board_members::board_ids_of(&mut conn, self.0.id).await?;
        let mut found = boards::find_many(&mut conn, &ids).await?;
        found.sort_by_key(|b| ids.iter().position(|id| *id == b.id));
        let visible = access::readable(&mut conn, found, ctx.viewer()).await?;
        Ok(visible.into_iter().map(BoardObj).collect())
    }
}
