//! Per-request DataLoaders: nested lists (owners, members, users, roles) load in one batched
//! query per kind instead of one query per parent.

use std::{collections::HashMap, sync::Arc};

use boards_shared::{
    db::{
        models::{
            board_members, boards, generations, tags, users, Board, BoardMember, Generation, Tag,
            User,
        },
        PgPool,
    },
    AppError,
};
use dataloader::{cached::Loader, BatchFn};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

/// A batch failure, shared by every key of the batch.
#[derive(Clone, Debug)]
pub struct LoadError(Arc<anyhow::Error>);

impl From<LoadError> for AppError {
    fn from(e: LoadError) -> Self {
        AppError::Internal(anyhow::anyhow!("batched load failed: {:#}", e.0))
    }
}

pub type Loaded<T> = Result<T, LoadError>;

/// How many times a loader yields before it runs its batch. juniper polls every sibling of a
/// list in the same pass, so all of them have registered their keys after one yield; each
/// extra yield re-polls the whole request future, which is what makes large counts expensive.
/// List roots prime the access loaders so that no sibling is a round trip behind the others.
const YIELD_COUNT: usize = 2;

async fn run<T, F>(pool: &PgPool, keys: &[Uuid], query: F) -> HashMap<Uuid, Loaded<T>>
where
    T: Clone + Default,
    F: AsyncFnOnce(&mut AsyncPgConnection, Vec<Uuid>) -> anyhow::Result<HashMap<Uuid, T>>,
{
    let result = match pool.get().await {
        Ok(mut conn) => query(&mut conn, keys.to_vec()).await,
        Err(e) => Err(anyhow::anyhow!("database unavailable: {e}")),
    };
    match result {
        Ok(mut found) => keys
            .iter()
            .map(|k| (*k, Ok(found.remove(k).unwrap_or_default())))
            .collect(),
        Err(e) => {
            let e = LoadError(Arc::new(e));
            keys.iter().map(|k| (*k, Err(e.clone()))).collect()
        }
    }
}

pub struct UserBatch(PgPool);

impl BatchFn<Uuid, Loaded<Option<User>>> for UserBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<Option<User>>> {
        run(&self.0, keys, async |conn, ids| {
            let rows = users::find_many(conn, &ids).await?;
            Ok(rows.into_iter().map(|u| (u.id, Some(u))).collect())
        })
        .await
    }
}

pub struct BoardBatch(PgPool);

impl BatchFn<Uuid, Loaded<Option<Board>>> for BoardBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<Option<Board>>> {
        run(&self.0, keys, async |conn, ids| {
            let rows = boards::find_many(conn, &ids).await?;
            Ok(rows.into_iter().map(|b| (b.id, Some(b))).collect())
        })
        .await
    }
}

pub struct MembersBatch(PgPool);

impl BatchFn<Uuid, Loaded<Vec<BoardMember>>> for MembersBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<Vec<BoardMember>>> {
        run(&self.0, keys, async |conn, ids| {
            let mut by_board: HashMap<Uuid, Vec<BoardMember>> = HashMap::new();
            for m in board_members::list_for_boards(conn, &ids).await? {
                by_board.entry(m.board_id).or_default().push(m);
            }
            Ok(by_board)
        })
        .await
    }
}

pub struct GenerationCountBatch(PgPool);

impl BatchFn<Uuid, Loaded<i64>> for GenerationCountBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<i64>> {
        run(&self.0, keys, async |conn, ids| {
            Ok(generations::count_for_boards(conn, &ids)
                .await?
                .into_iter()
                .collect())
        })
        .await
    }
}

pub struct GenerationBatch(PgPool);

impl BatchFn<Uuid, Loaded<Option<Generation>>> for GenerationBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<Option<Generation>>> {
        run(&self.0, keys, async |conn, ids| {
            let rows = generations::find_many(conn, &ids).await?;
            Ok(rows.into_iter().map(|g| (g.id, Some(g))).collect())
        })
        .await
    }
}

/// Tags of each generation, by name.
pub struct GenerationTagsBatch(PgPool);

impl BatchFn<Uuid, Loaded<Vec<Tag>>> for GenerationTagsBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<Vec<Tag>>> {
        run(&self.0, keys, async |conn, ids| {
            let mut by_generation: HashMap<Uuid, Vec<Tag>> = HashMap::new();
            for (g, t) in tags::for_generations(conn, &ids).await? {
                by_generation.entry(g).or_default().push(t);
            }
            Ok(by_generation)
        })
        .await
    }
}

/// The current viewer's member role on each board.
pub struct ViewerRoleBatch {
    pool: PgPool,
    viewer: Option<Uuid>,
}

impl BatchFn<Uuid, Loaded<Option<String>>> for ViewerRoleBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<Option<String>>> {
        let Some(viewer) = self.viewer else {
            return keys.iter().map(|k| (*k, Ok(None))).collect();
        };
        run(&self.pool, keys, async |conn, ids| {
            let rows = board_members::roles_of(conn, viewer, &ids).await?;
            Ok(rows.into_iter().map(|(b, r)| (b, Some(r))).collect())
        })
        .await
    }
}

/// Whether each user shares a board with the current viewer (who may then see the user's
/// identity fields).
pub struct SharesBoardBatch {
    pool: PgPool,
    viewer: Option<Uuid>,
}

impl BatchFn<Uuid, Loaded<bool>> for SharesBoardBatch {
    async fn load(&mut self, keys: &[Uuid]) -> HashMap<Uuid, Loaded<bool>> {
        let Some(viewer) = self.viewer else {
            return keys.iter().map(|k| (*k, Ok(false))).collect();
        };
        run(&self.pool, keys, async |conn, ids| {
            let rows = board_members::sharing_a_board_with(conn, viewer, &ids).await?;
            Ok(rows.into_iter().map(|u| (u, true)).collect())
        })
        .await
    }
}

/// The loaders of one request.
pub struct Loaders {
    pub users: Loader<Uuid, Loaded<Option<User>>, UserBatch>,
    pub boards: Loader<Uuid, Loaded<Option<Board>>, BoardBatch>,
    pub members: Loader<Uuid, Loaded<Vec<BoardMember>>, MembersBatch>,
    pub viewer_roles: Loader<Uuid, Loaded<Option<String>>, ViewerRoleBatch>,
    pub shares_board: Loader<Uuid, Loaded<bool>, SharesBoardBatch>,
    pub generation_counts: Loader<Uuid, Loaded<i64>, GenerationCountBatch>,
    pub generations: Loader<Uuid, Loaded<Option<Generation>>, GenerationBatch>,
    pub generation_tags: Loader<Uuid, Loaded<Vec<Tag>>, GenerationTagsBatch>,
}

impl Loaders {
    pub fn new(pool: &PgPool, viewer: Option<Uuid>) -> Self {
        Self {
            users: Loader::new(UserBatch(pool.clone())).with_yield_count(YIELD_COUNT),
            boards: Loader::new(BoardBatch(pool.clone())).with_yield_count(YIELD_COUNT),
            members: Loader::new(MembersBatch(pool.clone())).with_yield_count(YIELD_COUNT),
            viewer_roles: Loader::new(ViewerRoleBatch {
                pool: pool.clone(),
                viewer,
            })
            .with_yield_count(YIELD_COUNT),
            shares_board: Loader::new(SharesBoardBatch {
                pool: pool.clone(),
                viewer,
            })
            .with_yield_count(YIELD_COUNT),
            generation_counts: Loader::new(GenerationCountBatch(pool.clone()))
                .with_yield_count(YIELD_COUNT),
            generations: Loader::new(GenerationBatch(pool.clone())).with_yield_count(YIELD_COUNT),
            generation_tags: Loader::new(GenerationTagsBatch(pool.clone()))
                .with_yield_count(YIELD_COUNT),
        }
    }
}
