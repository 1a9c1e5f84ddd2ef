//! GraphQL enums. Names are upper-case; the database stores the lower-case values (§1.3).

use boards_shared::{
    db::models::boards::{BoardRelation, BoardSort},
    domain::access,
    AppError,
};
use juniper::GraphQLEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, GraphQLEnum)]
pub enum BoardRole {
    Viewer,
    Editor,
    Admin,
}

impl From<BoardRole> for access::BoardRole {
    fn from(r: BoardRole) -> Self {
        match r {
            BoardRole::Viewer => Self::Viewer,
            BoardRole::Editor => Self::Editor,
            BoardRole::Admin => Self::Admin,
        }
    }
}

impl BoardRole {
    pub fn from_db(s: &str) -> Result<Self, AppError> {
        match access::BoardRole::parse(s) {
            Some(access::BoardRole::Viewer) => Ok(Self::Viewer),
            Some(access::BoardRole::Editor) => Ok(Self::Editor),
            Some(access::BoardRole::Admin) => Ok(Self::Admin),
            None => Err(AppError::internal(anyhow::anyhow!(
                "unknown board role in database: {s:?}"
            ))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, GraphQLEnum)]
pub enum BoardQueryRole {
    Any,
    Owner,
    Member,
}

impl From<BoardQueryRole> for BoardRelation {
    fn from(r: BoardQueryRole) -> Self {
        match r {
            BoardQueryRole::Any => Self::Any,
            BoardQueryRole::Owner => Self::Owner,
            BoardQueryRole::Member => Self::Member,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, GraphQLEnum)]
pub enum SortOrder {
    CreatedAsc,
    CreatedDesc,
    UpdatedAsc,
    UpdatedDesc,
}

impl From<SortOrder> for BoardSort {
    fn from(s: SortOrder) -> Self {
        match s {
            SortOrder::CreatedAsc => Self::CreatedAsc,
            SortOrder::CreatedDesc => Self::CreatedDesc,
            SortOrder::UpdatedAsc => Self::UpdatedAsc,
            SortOrder::UpdatedDesc => Self::UpdatedDesc,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, GraphQLEnum)]
pub enum ArtifactType {
    Image,
    Video,
    Audio,
    Text,
    Lora,
    Model,
}

impl ArtifactType {
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Text => "text",
            Self::Lora => "lora",
            Self::Model => "model",
        }
    }

    pub fn from_db(s: &str) -> Result<Self, AppError> {
        Ok(match s {
            "image" => Self::Image,
            "video" => Self::Video,
            "audio" => Self::Audio,
            "text" => Self::Text,
            "lora" => Self::Lora,
            "model" => Self::Model,
            other => {
                return Err(AppError::internal(anyhow::anyhow!(
                    "unknown artifact type in database: {other:?}"
                )))
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, GraphQLEnum)]
pub enum GenerationStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl GenerationStatus {
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_db(s: &str) -> Result<Self, AppError> {
        Ok(match s {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(AppError::internal(anyhow::anyhow!(
                    "unknown generation status in database: {other:?}"
                )))
            }
        })
    }
}
