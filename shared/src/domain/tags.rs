//! Tags (contract §2.4 "Tags"), scoped to the caller's tenant.

use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    boards::visible_board,
    text::{check_json_size, check_text, json_has_nul},
    Actor,
};
use crate::{
    db::models::{
        generations,
        tags::{self, NewTag, TagChanges},
        Tag,
    },
    AppError, AppResult,
};

pub const MAX_TAG_CHARS: usize = 100;

/// Lower-case; whitespace/underscore runs → `-`; drop chars outside `[a-z0-9-]`; collapse `-`
/// runs; trim `-` (contract §2.4).
pub fn slugify(text: &str) -> String {
    let mut spaced = String::with_capacity(text.len());
    let mut in_gap = false;
    for c in text.to_lowercase().chars() {
        if c.is_whitespace() || c == '_' {
            if !in_gap {
                spaced.push('-');
            }
            in_gap = true;
        } else {
            spaced.push(c);
            in_gap = false;
        }
    }
    let mut out = String::with_capacity(spaced.len());
    for c in spaced.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            if c == '-' && out.ends_with('-') {
                continue;
            }
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

pub struct CreateTag {
    pub name: String,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Value>,
}

pub struct UpdateTag {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Value>,
}

fn check_name(name: &str) -> AppResult<String> {
    check_text("Tag name", name)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::bad_input("Tag name must not be empty"));
    }
    if name.chars().count() > MAX_TAG_CHARS {
        return Err(AppError::bad_input(format!(
            "Tag name must be at most {MAX_TAG_CHARS} characters"
        )));
    }
    Ok(name.to_string())
}

fn check_slug(slug: &str) -> AppResult<String> {
    check_text("Tag slug", slug)?;
    if slug.chars().count() > MAX_TAG_CHARS {
        return Err(AppError::bad_input(format!(
            "Tag slug must be at most {MAX_TAG_CHARS} characters"
        )));
    }
    Ok(slug.to_string())
}

fn slug_from_name(name: &str) -> AppResult<String> {
    let slug = slugify(name);
    if slug.is_empty() {
        return Err(AppError::bad_input(
            "Tag name must contain at least one alphanumeric character",
        ));
    }
    Ok(slug)
}

fn check_metadata(metadata: Value) -> AppResult<Value> {
    if json_has_nul(&metadata) {
        return Err(AppError::bad_input(
            "metadata must not contain NUL characters",
        ));
    }
    check_json_size("metadata", &metadata)?;
    if !metadata.is_object() {
        return Err(AppError::bad_input("metadata must be a JSON object"));
    }
    Ok(metadata)
}

fn taken(slug: &str) -> AppError {
    AppError::Conflict(format!("Tag with slug '{slug}' already exists"))
}

pub async fn create_tag(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: CreateTag,
) -> AppResult<Tag> {
    let name = check_name(&input.name)?;
    let slug = match input.slug.filter(|s| !s.is_empty()) {
        Some(s) => check_slug(&s)?,
        None => slug_from_name(&name)?,
    };
    if let Some(d) = &input.description {
        check_text("Tag description", d)?;
    }
    if tags::slug_taken(conn, actor.tenant_id, &slug, None).await? {
        return Err(taken(&slug));
    }
    let new = NewTag {
        tenant_id: actor.tenant_id,
        name,
        slug: slug.clone(),
        description: input.description,
        metadata: input
            .metadata
            .map(check_metadata)
            .transpose()?
            .unwrap_or_else(|| json!({})),
    };
    tags::insert(conn, &new)
        .await
        .map_err(|e| match AppError::from(e) {
            AppError::Conflict(_) => taken(&slug),
            other => other,
        })
}

async fn tag_in_tenant(conn: &mut AsyncPgConnection, actor: &Actor, id: Uuid) -> AppResult<Tag> {
    tags::find_in_tenant(conn, actor.tenant_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("Tag not found"))
}

pub async fn update_tag(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    input: UpdateTag,
) -> AppResult<Tag> {
    tag_in_tenant(conn, actor, id).await?;
    let name = input.name.as_deref().map(check_name).transpose()?;
    let given_slug = input.slug.filter(|s| !s.is_empty());
    let slug = match (&name, given_slug) {
        (_, Some(s)) => Some(check_slug(&s)?),
        (Some(n), None) => Some(slug_from_name(n)?),
        (None, None) => None,
    };
    if let Some(s) = &slug {
        if tags::slug_taken(conn, actor.tenant_id, s, Some(id)).await? {
            return Err(taken(s));
        }
    }
    if let Some(d) = &input.description {
        check_text("Tag description", d)?;
    }
    let changes = TagChanges {
        name,
        slug: slug.clone(),
        description: input.description,
        metadata: input.metadata.map(check_metadata).transpose()?,
    };
    tags::update(conn, id, &changes)
        .await
        .map_err(|e| match (AppError::from(e), &slug) {
            (AppError::Conflict(_), Some(s)) => taken(s),
            (other, _) => other,
        })
}

pub async fn delete_tag(conn: &mut AsyncPgConnection, actor: &Actor, id: Uuid) -> AppResult<()> {
    tag_in_tenant(conn, actor, id).await?;
    tags::delete(conn, id).await?;
    Ok(())
}

/// The checks shared by adding and removing a tag on a generation.
/// The board of a generation `actor` may tag.
async fn editable_generation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    generation_id: Uuid,
) -> AppResult<Uuid> {
    let generation = generations::find(conn, generation_id)
        .await?
        .filter(|g| g.tenant_id == actor.tenant_id)
        .ok_or_else(|| AppError::not_found("Generation not found"))?;
    let (_, relation) =
        visible_board(conn, actor, generation.board_id, "Generation not found").await?;
    if !relation.can_edit() {
        return Err(AppError::forbidden(
            "Permission denied: only board owner or editor can modify generation tags",
        ));
    }
    Ok(generation.board_id)
}

/// Idempotent: adding an existing link returns the tag unchanged. Returns the tag and the
/// generation's board.
pub async fn add_tag_to_generation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    generation_id: Uuid,
    tag_id: Uuid,
) -> AppResult<(Tag, Uuid)> {
    let board = editable_generation(conn, actor, generation_id).await?;
    let tag = tag_in_tenant(conn, actor, tag_id).await?;
    tags::link(conn, generation_id, tag_id).await?;
    Ok((tag, board))
}

/// Returns the generation's board.
pub async fn remove_tag_from_generation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    generation_id: Uuid,
    tag_id: Uuid,
) -> AppResult<Uuid> {
    let board = editable_generation(conn, actor, generation_id).await?;
    if !tags::unlink(conn, generation_id, tag_id).await? {
        return Err(AppError::not_found(
            "Tag is not associated with this generation",
        ));
    }
    Ok(board)
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugify_matches_the_original_examples() {
        assert_eq!(slugify("Hello World"), "hello-world");
        assert_eq!(slugify("Hello! @World#"), "hello-world");
        assert_eq!(slugify("hello_world"), "hello-world");
        assert_eq!(slugify("  hello world  "), "hello-world");
        assert_eq!(slugify("UPPERCASE"), "uppercase");
        assert_eq!(slugify("Model Photo"), "model-photo");
        assert_eq!(slugify("Ça va"), "a-va");
        assert_eq!(slugify("!!!"), "");
        assert_eq!(slugify("a - b"), "a-b");
    }
}
