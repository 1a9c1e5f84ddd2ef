//! `User`. The identity fields (`email`, `authProvider`, `authSubject`) are shown only to the
//! user themself and to users who share a board with them; others get `null` for the
//! nullable `email` and `""` for the two non-null fields.

use boards_shared::{
    db::models::{board_members, boards, User},
    domain::access,
};
use chrono::{DateTime, Utc};
use juniper::graphql_object;
use uuid::Uuid;

use super::BoardObj;
use crate::graphql::{context::Context, errors::GqlResult, scalars::BoardsScalar};

pub struct UserObj {
    user: User,
    /// Whether the caller may see the identity fields (decided by the caller's context).
    identity_visible: bool,
}

impl UserObj {
    pub fn new(user: User, identity_visible: bool) -> Self {
        Self {
            user,
            identity_visible,
        }
    }

    fn email(&self) -> Option<&str> {
        self.identity_visible
            .then_some(self.user.email.as_deref())
            .flatten()
    }

    fn auth_provider(&self) -> &str {
        if self.identity_visible {
            &self.user.auth_provider
        } else {
            ""
        }
    }

    fn auth_subject(&self) -> &str {
        if self.identity_visible {
            &self.user.auth_subject
        } else {
            ""
        }
    }
}

impl super::direct::DirectFields for UserObj {
    const TYPE: &'static str = "User";

    fn direct(&self, field: &str) -> Option<juniper::Value<BoardsScalar>> {
        use juniper::Value;
        let text = |s: &str| Value::scalar(s.to_string());
        let opt = |s: Option<&str>| s.map_or(Value::Null, text);
        let u = &self.user;
        Some(match field {
            "id" => Value::scalar(u.id.hyphenated().to_string()),
            "tenantId" => Value::scalar(u.tenant_id.hyphenated().to_string()),
            "authProvider" => text(self.auth_provider()),
            "authSubject" => text(self.auth_subject()),
            "email" => opt(self.email()),
            "displayName" => opt(u.display_name.as_deref()),
            "avatarUrl" => opt(u.avatar_url.as_deref()),
            "createdAt" => Value::scalar(crate::graphql::scalars::isoformat(&u.created_at)),
            "updatedAt" => Value::scalar(crate::graphql::scalars::isoformat(&u.updated_at)),
            _ => return None,
        })
    }
}

#[graphql_object(name = "User", context = Context, scalar = BoardsScalar)]
impl UserObj {
    fn id(&self) -> Uuid {
        self.user.id
    }
    fn tenant_id(&self) -> Uuid {
        self.user.tenant_id
    }
    /// Empty unless the caller is this user or shares a board with them.
    #[graphql(name = "authProvider")]
    fn auth_provider_field(&self) -> &str {
        self.auth_provider()
    }
    /// Empty unless the caller is this user or shares a board with them.
    #[graphql(name = "authSubject")]
    fn auth_subject_field(&self) -> &str {
        self.auth_subject()
    }
    /// Null unless the caller is this user or shares a board with them.
    #[graphql(name = "email")]
    fn email_field(&self) -> Option<&str> {
        self.email()
    }
    fn display_name(&self) -> Option<&str> {
        self.user.display_name.as_deref()
    }
    fn avatar_url(&self) -> Option<&str> {
        self.user.avatar_url.as_deref()
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.user.created_at
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.user.updated_at
    }

    /// Boards this user owns that the caller may read, newest first (of the newest
    /// page-maximum owned boards).
    async fn boards(&self, ctx: &Context) -> GqlResult<Vec<BoardObj>> {
        let mut conn = ctx.conn().await?;
        let owned = boards::owned_by(&mut conn, self.user.id, ctx.max_page_size()).await?;
        let visible = access::readable(&mut conn, owned, ctx.viewer()).await?;
        Ok(visible.into_iter().map(BoardObj).collect())
    }

    /// Boards this user is a member of that the caller may read (of the page-maximum joined
    /// most recently).
    async fn member_boards(&self, ctx: &Context) -> GqlResult<Vec<BoardObj>> {
        let mut conn = ctx.conn().await?;
        let ids = board_members::board_ids_of(&mut conn, self.user.id, ctx.max_page_size()).await?;
        let mut found = boards::find_many(&mut conn, &ids).await?;
        found.sort_by_key(|b| ids.iter().position(|id| *id == b.id));
        let visible = access::readable(&mut conn, found, ctx.viewer()).await?;
        Ok(visible.into_iter().map(BoardObj).collect())
    }
}
