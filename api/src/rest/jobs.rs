//! `POST /api/jobs/generations` (contract §3.6) and [`submit_generation`], which GraphQL
//! `createGeneration` calls too: one path from a request to a queued job, with the same checks
//! (board access, generator, artifact type, inputs) wherever it comes from.

use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use boards_shared::{
    db::models::Generation,
    domain::{
        generations::{self, CreateGeneration},
        Actor,
    },
    generators::ArtifactKind,
    trace::Origin,
    AppError, AppResult,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{current_user, failure, json_body};
use crate::{middleware::RequestId, state::AppState};

/// Creates a pending generation and its job (one transaction, outbox), then wakes the relay.
pub async fn submit_generation(
    state: &AppState,
    actor: &Actor,
    input: CreateGeneration,
    origin: Origin,
) -> AppResult<Generation> {
    // Every path that starts a paid job counts against the caller's generation quota.
    state
        .limits
        .check(boards_shared::ratelimit::Limit::Generation, actor.user_id)
        .await?;
    let mut conn = state.pool.get().await?;
    let generation =
        generations::create_generation(&mut conn, actor, &state.generators, input, origin).await?;
    state.relay.wake();
    crate::sse::announce_generation_created(state, &generation);
    Ok(generation)
}

/// The body of the original's REST variant: every field is required; `tenant_id` and
/// `user_id` are ignored in favour of the caller's own.
#[derive(Deserialize)]
#[allow(dead_code)] // tenant_id and user_id are required on the wire, never used.
struct SubmitBody {
    tenant_id: Uuid,
    board_id: Uuid,
    user_id: Uuid,
    generator_name: String,
    artifact_type: String,
    input_params: Value,
}

fn shaped(body: &[u8]) -> AppResult<CreateGeneration> {
    let body: SubmitBody = json_body(body)?;
    let kind =
        ArtifactKind::parse(&body.artifact_type.trim().to_ascii_lowercase()).ok_or_else(|| {
            AppError::unprocessable(format!(
                "artifact_type must be one of image, video, audio, text (got '{}')",
                body.artifact_type.chars().take(50).collect::<String>()
            ))
        })?;
    if !body.input_params.is_object() {
        return Err(AppError::unprocessable(
            "input_params must be a JSON object",
        ));
    }
    Ok(CreateGeneration {
        board_id: body.board_id,
        generator_name: body.generator_name,
        artifact_type: kind.as_str().to_string(),
        input_params: body.input_params,
    })
}

/// `POST /api/jobs/generations` → 200 `{"generation_id": ...}`.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let auth = match current_user(&state, &req).await {
        Ok(auth) => auth,
        Err(res) => return res,
    };
    let Some(user_id) = auth.user_id() else {
        return failure(
            &state,
            &req,
            &AppError::unauthenticated("Authentication required"),
        );
    };
    let actor = Actor {
        user_id,
        tenant_id: auth.tenant_id,
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let origin = Origin::new(request_id, crate::graphql::transport::request_trace(&req));
    let result = match shaped(&body) {
        Ok(input) => submit_generation(&state, &actor, input, origin).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(generation) => HttpResponse::Ok().json(json!({"generation_id": generation.id})),
        Err(e) => failure(&state, &req, &e),
    }
}
