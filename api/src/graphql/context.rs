//! The per-request GraphQL context: application state, the resolved caller and the loaders.

use actix_web::web;
use boards_shared::trace::Origin;
use boards_shared::{
    auth::AuthContext,
    db::{
        models::{board_members, Board, User},
        PgConn,
    },
    domain::{
        access::{self, Relation},
        Actor,
    },
    AppError,
};
use slog::Logger;
use uuid::Uuid;

use super::{
    errors::{GqlError, GqlResult},
    loaders::Loaders,
    types::UserObj,
};
use crate::state::AppState;

pub struct Context {
    pub state: web::Data<AppState>,
    pub auth: AuthContext,
    pub loaders: Loaders,
    pub logger: Logger,
    /// The HTTP request id and span, carried into job messages.
    pub origin: Origin,
}

impl juniper::Context for Context {}

impl Context {
    pub fn new(
        state: web::Data<AppState>,
        auth: AuthContext,
        logger: Logger,
        origin: Origin,
    ) -> Self {
        let loaders = Loaders::new(&state.pool, auth.user_id());
        Self {
            state,
            auth,
            loaders,
            logger,
            origin,
        }
    }

    /// The board of a generation, if the caller may read it.
    pub async fn readable_board(&self, board_id: Uuid) -> GqlResult<Option<Board>> {
        let board = self
            .loaders
            .boards
            .try_load(board_id)
            .await
            .map_err(load_failed)??;
        match board {
            Some(b) if self.can_read(&b).await? => Ok(Some(b)),
            _ => Ok(None),
        }
    }

    pub async fn conn(&self) -> GqlResult<PgConn<'_>> {
        Ok(self.state.pool.get().await.map_err(AppError::from)?)
    }

    pub fn viewer(&self) -> Option<Uuid> {
        self.auth.user_id()
    }

    /// The authenticated caller, or an `UNAUTHENTICATED` error naming what needed it.
    pub fn actor(&self, what: &str) -> GqlResult<Actor> {
        match (self.auth.user_id(), self.auth.is_authenticated()) {
            (Some(user_id), true) => Ok(Actor {
                user_id,
                tenant_id: self.auth.tenant_id,
            }),
            _ => Err(GqlError::unauthenticated(what)),
        }
    }

    pub fn max_page_size(&self) -> i64 {
        self.state.config.graphql.max_page_size
    }

    /// The viewer's relation to `board`, batched across sibling boards.
    pub async fn relation(&self, board: &Board) -> GqlResult<Relation> {
        let viewer = self.viewer();
        if viewer.is_none() || viewer == Some(board.owner_id) {
            return Ok(Relation::of(board, viewer, None));
        }
        let role = self
            .loaders
            .viewer_roles
            .try_load(board.id)
            .await
            .map_err(load_failed)??;
        Ok(Relation::of(board, viewer, role.as_deref()))
    }

    /// Loads the viewer's roles on `boards` in one query and primes the role loader, so that
    /// nested fields of a board list check access without further queries.
    pub async fn prime_roles(&self, boards: &[Board]) -> GqlResult<()> {
        let Some(viewer) = self.viewer() else {
            return Ok(());
        };
        let ids: Vec<Uuid> = boards
            .iter()
            .filter(|b| b.owner_id != viewer && !b.is_public)
            .map(|b| b.id)
            .collect();
        let mut roles: std::collections::HashMap<Uuid, String> = if ids.is_empty() {
            Default::default()
        } else {
            let mut conn = self.conn().await?;
            board_members::roles_of(&mut conn, viewer, &ids)
                .await?
                .into_iter()
                .collect()
        };
        self.loaders
            .viewer_roles
            .prime_many(ids.into_iter().map(|id| (id, Ok(roles.remove(&id)))))
            .await;
        self.loaders
            .boards
            .prime_many(boards.iter().map(|b| (b.id, Ok(Some(b.clone())))))
            .await;
        Ok(())
    }

    /// Primes the loaders with a board whose relation to the viewer is already known.
    pub async fn prime_relation(&self, board: &Board, relation: Relation) {
        let role = match relation {
            Relation::Member(r) => Some(r.as_str().to_string()),
            _ => None,
        };
        self.loaders.viewer_roles.prime(board.id, Ok(role)).await;
        self.loaders
            .boards
            .prime(board.id, Ok(Some(board.clone())))
            .await;
    }

    /// Whether the viewer may see the identity fields (e-mail, auth provider and subject) of
    /// `user_id`: only the user themself and users who share a board with them (batched).
    pub async fn sees_identity_of(&self, user_id: Uuid) -> GqlResult<bool> {
        match self.viewer() {
            None => Ok(false),
            Some(viewer) if viewer == user_id => Ok(true),
            Some(_) => Ok(self
                .loaders
                .shares_board
                .try_load(user_id)
                .await
                .map_err(load_failed)??),
        }
    }

    /// [`Self::sees_identity_of`] for the owner or a member of `board`, which the viewer has
    /// been allowed to read: on a private board the viewer is its owner or a member, so they
    /// share it, and no query is needed.
    pub async fn sees_identity_on(&self, user_id: Uuid, board: &Board) -> GqlResult<bool> {
        match self.viewer() {
            None => Ok(false),
            Some(viewer) if viewer == user_id || viewer == board.owner_id => Ok(true),
            Some(_) if !board.is_public => Ok(self.can_read(board).await?),
            Some(_) => self.sees_identity_of(user_id).await,
        }
    }

    /// A `User` object, with identity fields only if the viewer may see them.
    pub async fn user_obj(&self, user: User) -> GqlResult<UserObj> {
        let visible = self.sees_identity_of(user.id).await?;
        Ok(UserObj::new(user, visible))
    }

    pub async fn can_read(&self, board: &Board) -> GqlResult<bool> {
        if board.is_public {
            return Ok(true);
        }
        Ok(access::can_read(board, self.relation(board).await?))
    }
}

/// A loader that lost a key (cannot happen: every batch answers every key).
pub fn load_failed(e: std::io::Error) -> GqlError {
    GqlError(AppError::internal(anyhow::anyhow!("loader: {e}")))
}
