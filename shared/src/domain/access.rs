//! Board roles and the access rules of contract §0.4.

use std::collections::HashMap;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::db::models::{board_members, Board};

/// A member's role (stored lower-case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BoardRole {
    Viewer,
    Editor,
    Admin,
}

impl BoardRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// How a caller relates to one board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Owner,
    Member(BoardRole),
    /// Not related (or anonymous).
    Stranger,
}

impl Relation {
    pub fn of(board: &Board, user_id: Option<Uuid>, member_role: Option<&str>) -> Self {
        match user_id {
            Some(u) if u == board.owner_id => Self::Owner,
            Some(_) => member_role
                .and_then(BoardRole::parse)
                .map_or(Self::Stranger, Self::Member),
            None => Self::Stranger,
        }
    }

    /// Owner, editor or admin.
    pub fn can_edit(self) -> bool {
        matches!(
            self,
            Self::Owner | Self::Member(BoardRole::Editor | BoardRole::Admin)
        )
    }

    /// Owner or admin.
    pub fn can_administer(self) -> bool {
        matches!(self, Self::Owner | Self::Member(BoardRole::Admin))
    }
}

/// Public boards, and private ones of their owner and members.
pub fn can_read(board: &Board, relation: Relation) -> bool {
    board.is_public || relation != Relation::Stranger
}

/// The caller's relation to one board (one query at most).
pub async fn relation(
    conn: &mut AsyncPgConnection,
    board: &Board,
    user_id: Option<Uuid>,
) -> QueryResult<Relation> {
    let Some(user) = user_id else {
        return Ok(Relation::Stranger);
    };
    if user == board.owner_id {
        return Ok(Relation::Owner);
    }
    let role = board_members::find_for(conn, board.id, user).await?;
    Ok(Relation::of(
        board,
        Some(user),
        role.as_ref().map(|m| m.role.as_str()),
    ))
}

/// Keeps the boards `user_id` may read, in their order (one query at most).
pub async fn readable(
    conn: &mut AsyncPgConnection,
    boards: Vec<Board>,
    user_id: Option<Uuid>,
) -> QueryResult<Vec<Board>> {
    let private: Vec<Uuid> = boards
        .iter()
        .filter(|b| !b.is_public && Some(b.owner_id) != user_id)
        .map(|b| b.id)
        .collect();
    let roles: HashMap<Uuid, String> = match user_id {
        Some(user) if !private.is_empty() => board_members::roles_of(conn, user, &private)
            .await?
            .into_iter()
            .collect(),
        _ => HashMap::new(),
    };
    Ok(boards
        .into_iter()
        .filter(|b| {
            let rel = Relation::of(b, user_id, roles.get(&b.id).map(String::as_str));
            can_read(b, rel)
        })
        .collect())
}
