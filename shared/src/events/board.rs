//! Board events: the changes visible on a board, as its feed (`GET /api/sse/boards/{id}/events`)
//! carries them. The JSON is internally tagged by `type`, which is also the SSE `event:` name.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ProgressEvent;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BoardEvent {
    /// A generation was created on the board (requested, regenerated or uploaded).
    GenerationCreated {
        generation_id: Uuid,
        generator_name: String,
        status: String,
    },
    /// A generation's status or progress changed; `completed` events carry the artifact, as on
    /// the per-generation stream.
    GenerationProgress(ProgressEvent),
    GenerationDeleted {
        generation_id: Uuid,
    },
    /// A tag was put on (`tagged`) or taken off a generation.
    GenerationTagsChanged {
        generation_id: Uuid,
        tag_id: Uuid,
        tagged: bool,
    },
    /// Title, description, visibility or settings changed.
    BoardUpdated,
    /// The board is gone: its feeds end after this event.
    BoardDeleted,
    /// A member was added, removed or given another role.
    MembersChanged,
}

impl BoardEvent {
    /// The SSE `event:` name (the same as the JSON `type`).
    pub fn name(&self) -> &'static str {
        match self {
            BoardEvent::GenerationCreated { .. } => "generation_created",
            BoardEvent::GenerationProgress(_) => "generation_progress",
            BoardEvent::GenerationDeleted { .. } => "generation_deleted",
            BoardEvent::GenerationTagsChanged { .. } => "generation_tags_changed",
            BoardEvent::BoardUpdated => "board_updated",
            BoardEvent::BoardDeleted => "board_deleted",
            BoardEvent::MembersChanged => "members_changed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_type_is_the_event_name() {
        let id = Uuid::new_v4();
        for event in [
            BoardEvent::GenerationCreated {
                generation_id: id,
                generator_name: "local-text".into(),
                status: "pending".into(),
            },
            BoardEvent::GenerationProgress(ProgressEvent::new(
                id,
                "processing",
                5.0,
                "processing",
                None,
            )),
            BoardEvent::GenerationTagsChanged {
                generation_id: id,
                tag_id: id,
                tagged: true,
            },
            BoardEvent::GenerationDeleted { generation_id: id },
            BoardEvent::BoardUpdated,
            BoardEvent::BoardDeleted,
            BoardEvent::MembersChanged,
        ] {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.name(), "{json}");
            assert_eq!(serde_json::from_value::<BoardEvent>(json).unwrap(), event);
        }
    }
}
