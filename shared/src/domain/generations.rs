//! Generation operations (contract §2.4 "Generations"): create, regenerate, cancel, delete.
//! A new generation and its job message are written in one transaction (outbox).

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;
use uuid::Uuid;

use super::{
    access::{BoardRole, Relation},
    boards::visible_board,
    inputs,
    text::{check_json_size, check_text, json_has_nul},
    Actor,
};
use crate::{
    db::models::{
        generations::{self, NewGeneration},
        outbox, Generation,
    },
    generators::Registry,
    jobs::JobMessage,
    trace::Origin,
    AppError, AppResult,
};

pub struct CreateGeneration {
    pub board_id: Uuid,
    pub generator_name: String,
    /// Lower-case artifact type.
    pub artifact_type: String,
    pub input_params: Value,
}

/// Inserts a pending generation and its outbox message in one transaction.
async fn insert_with_job(
    conn: &mut AsyncPgConnection,
    new: NewGeneration,
    origin: Origin,
) -> AppResult<Generation> {
    conn.transaction::<_, AppError, _>(async move |conn| {
        crate::db::set_transaction_trace(conn, origin.trace).await?;
        let generation = generations::insert(conn, &new).await?;
        let message = JobMessage::new(generation.id, &generation.generator_name, &origin);
        let message = serde_json::to_value(&message).map_err(AppError::internal)?;
        outbox::insert(conn, generation.id, &message).await?;
        Ok(generation)
    })
    .await
}

pub async fn create_generation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    registry: &Registry,
    input: CreateGeneration,
    origin: Origin,
) -> AppResult<Generation> {
    check_text("Generator name", &input.generator_name)?;
    let (board, relation) = visible_board(conn, actor, input.board_id, "Board not found").await?;
    if !relation.can_edit() {
        return Err(AppError::forbidden(
            "Permission denied: only board owner or editor can create generations",
        ));
    }
    let generator = registry.get(&input.generator_name).ok_or_else(|| {
        AppError::bad_input(format!("Unknown generator: {}", input.generator_name))
    })?;
    if generator.artifact_type.as_str() != input.artifact_type {
        return Err(AppError::bad_input(format!(
            "Generator '{}' produces {} artifacts, not {}",
            generator.name, generator.artifact_type, input.artifact_type
        )));
    }
    generator.ensure_available()?;
    if json_has_nul(&input.input_params) {
        return Err(AppError::bad_input(
            "Invalid input parameters: NUL characters are not allowed",
        ));
    }
    check_json_size("Invalid input parameters: inputParams", &input.input_params)?;
    generator.validate(&input.input_params)?;
    check_inputs(conn, actor, actor.tenant_id, generator, &input.input_params).await?;
    let new = NewGeneration {
        tenant_id: actor.tenant_id,
        board_id: board.id,
        user_id: actor.user_id,
        generator_name: generator.name.clone(),
        artifact_type: input.artifact_type,
        input_params: input.input_params,
        status: "pending".into(),
    };
    insert_with_job(conn, new, origin).await
}

/// A new pending generation with the same generator and inputs as `id` (the client calls it
/// `retryGeneration`).
pub async fn regenerate(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    registry: &Registry,
    id: Uuid,
    origin: Origin,
) -> AppResult<Generation> {
    let original = generations::find(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("Original generation not found"))?;
    let (_, relation) = visible_board(
        conn,
        actor,
        original.board_id,
        "Original generation not found",
    )
    .await?;
    if !relation.can_edit() {
        return Err(AppError::forbidden(
            "Permission denied: only board owner or editor can regenerate",
        ));
    }
    let Some(generator) = registry.get(&original.generator_name) else {
        return Err(AppError::bad_input(format!(
            "Generator '{}' is no longer available",
            original.generator_name
        )));
    };
    generator.ensure_available()?;
    // The inputs must be readable by whoever asks again, not only by the original's creator.
    check_inputs(
        conn,
        actor,
        original.tenant_id,
        generator,
        &original.input_params,
    )
    .await?;
    let new = NewGeneration {
        tenant_id: original.tenant_id,
        board_id: original.board_id,
        user_id: actor.user_id,
        generator_name: original.generator_name,
        artifact_type: original.artifact_type,
        input_params: original.input_params,
        status: "pending".into(),
    };
    insert_with_job(conn, new, origin).await
}

/// Every input artifact must be readable by `actor` (contract: lineage must not leak pixels).
async fn check_inputs(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    tenant_id: Uuid,
    generator: &crate::generators::Registered,
    input: &Value,
) -> AppResult<()> {
    inputs::check(conn, actor.user_id, tenant_id, generator, input)
        .await
        .map_err(|e| match e {
            inputs::InputError::Invalid(m) => {
                AppError::bad_input(format!("Invalid input parameters: {m}"))
            }
            inputs::InputError::Database(e) => e.into(),
        })
}

/// Owner (any generation), or editor/admin for their own generations.
fn may_manage(relation: Relation, generation: &Generation, actor: &Actor) -> bool {
    match relation {
        Relation::Owner => true,
        Relation::Member(BoardRole::Editor | BoardRole::Admin) => {
            generation.user_id == actor.user_id
        }
        _ => false,
    }
}

async fn managed(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    verb: &str,
) -> AppResult<Generation> {
    let generation = generations::find(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("Generation not found"))?;
    let (_, relation) =
        visible_board(conn, actor, generation.board_id, "Generation not found").await?;
    if !may_manage(relation, &generation, actor) {
        return Err(AppError::forbidden(format!(
            "Permission denied: only board owner or generation creator can {verb}"
        )));
    }
    Ok(generation)
}

/// Cancels a pending or processing generation (a conditional update).
pub async fn cancel_generation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Generation> {
    let current = managed(conn, actor, id, "cancel").await?;
    match generations::cancel(conn, id).await? {
        Some(g) => Ok(g),
        None => {
            let status = generations::find(conn, id)
                .await?
                .map_or(current.status, |g| g.status);
            Err(AppError::Conflict(format!(
                "Cannot cancel generation with status '{status}'. Only pending or processing generations can be cancelled."
            )))
        }
    }
}

/// Deletes a generation; returns the row as it was.
pub async fn delete_generation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Generation> {
    let generation = managed(conn, actor, id, "delete").await?;
    if !generations::delete(conn, id).await? {
        return Err(AppError::not_found("Generation not found"));
    }
    Ok(generation)
}
