//! Webhook administration (issue 12): board owners and admins register endpoints for the
//! event types they want, see each delivery's outcome, resend one, rotate the signing secret
//! and send a test event. Anyone else gets the board's usual answers: NOT_FOUND when they may
//! not read it, FORBIDDEN when they may read but not administer it.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use serde_json::json;
use uuid::Uuid;

use super::{boards::visible_board, text::check_text, Actor};
use crate::{
    config::Config,
    db::models::{
        webhooks::{self, NewWebhook, WebhookChanges},
        Delivery, Webhook,
    },
    net::{vet, AllowList, FetchError, Resolve},
    webhooks::{EventType, TEST_EVENT},
    AppError, AppResult,
};

/// Longest webhook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// What creating and changing webhooks is checked against.
#[derive(Clone)]
pub struct WebhookRules {
    /// Private hosts and networks URLs may point at anyway (`BOARDS_WEBHOOK_ALLOWED_HOSTS`).
    pub allow: AllowList,
    pub resolver: Arc<dyn Resolve>,
    pub max_per_board: u32,
    pub rotation_grace: Duration,
}

impl WebhookRules {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            allow: AllowList::parse(&config.webhooks.allowed_hosts)
                .map_err(|e| anyhow::anyhow!("webhooks.allowed_hosts: {e}"))?,
            resolver: Arc::new(crate::net::SystemResolver),
            max_per_board: config.webhooks.max_per_board,
            rotation_grace: Duration::from_secs(config.webhooks.secret_rotation_grace_seconds),
        })
    }
}

pub struct CreateWebhook {
    pub board_id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
}

#[derive(Default)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// The URL, checked as deliveries will be: http or https, no credentials, and a host that is
/// not on our own network (the SSRF guard of URL imports; deliveries check again when sent,
/// against what the name resolves to then).
pub async fn check_url(url: &str, rules: &WebhookRules) -> AppResult<String> {
    check_text("Webhook URL", url)?;
    let url = url.trim();
    if url.chars().count() > MAX_URL_CHARS {
        return Err(AppError::bad_input(format!(
            "Webhook URL must be at most {MAX_URL_CHARS} characters"
        )));
    }
    let parsed = url::Url::parse(url).map_err(|_| {
        AppError::bad_input("Webhook URL is not a valid URL (an http or https scheme and a host)")
    })?;
    match vet(&parsed, &rules.allow, &*rules.resolver).await {
        Ok(_) => Ok(parsed.to_string()),
        Err(FetchError::NotAllowed(reason)) => Err(AppError::bad_input(format!(
            "Webhook URL not allowed: {reason}"
        ))),
        Err(_) => Err(AppError::bad_input(
            "Webhook URL not allowed: its host does not resolve",
        )),
    }
}

/// The event types, known and without repeats, in their canonical order.
pub fn check_event_types(types: &[String]) -> AppResult<Vec<Option<String>>> {
    if types.is_empty() {
        return Err(AppError::bad_input(
            "eventTypes must name at least one event type",
        ));
    }
    let mut wanted = vec![];
    for t in types {
        check_text("Event type", t)?;
        let event = EventType::parse(t.trim()).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
            AppError::bad_input(format!(
                "Unknown event type {t:?}; expected one of: {}",
                known.join(", ")
            ))
        })?;
        if !wanted.contains(&event) {
            wanted.push(event);
        }
    }
    Ok(EventType::ALL
        .into_iter()
        .filter(|e| wanted.contains(e))
        .map(|e| Some(e.as_str().to_string()))
        .collect())
}

fn check_description(d: Option<String>) -> AppResult<Option<String>> {
    let Some(d) = d else { return Ok(None) };
    check_text("Webhook description", &d)?;
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::bad_input(format!(
            "Webhook description must be at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(Some(d))
}

/// Board `board_id`, when the actor may administer it.
async fn administered_board(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    board_id: Uuid,
    missing: &str,
) -> AppResult<()> {
    let (_, relation) = visible_board(conn, actor, board_id, missing).await?;
    if !relation.can_administer() {
        return Err(AppError::forbidden(
            "Permission denied: only board owner or admin can manage webhooks",
        ));
    }
    Ok(())
}

/// Webhook `id`, when the actor may administer its board (NOT_FOUND alike for unknown ones,
/// other tenants' and those of boards the actor cannot read).
pub async fn administered(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Webhook> {
    let webhook = webhooks::find(conn, id)
        .await?
        .filter(|w| w.tenant_id == actor.tenant_id)
        .ok_or_else(|| AppError::not_found("Webhook not found"))?;
    administered_board(conn, actor, webhook.board_id, "Webhook not found").await?;
    Ok(webhook)
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    board_id: Uuid,
) -> AppResult<Vec<Webhook>> {
    administered_board(conn, actor, board_id, "Board not found").await?;
    Ok(webhooks::list_for_board(conn, board_id).await?)
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    rules: &WebhookRules,
    input: CreateWebhook,
) -> AppResult<Webhook> {
    administered_board(conn, actor, input.board_id, "Board not found").await?;
    let event_types = check_event_types(&input.event_types)?;
    let description = check_description(input.description)?;
    let url = check_url(&input.url, rules).await?;
    if webhooks::count_for_board(conn, input.board_id).await? >= i64::from(rules.max_per_board) {
        return Err(AppError::bad_input(format!(
            "A board can have at most {} webhooks",
            rules.max_per_board
        )));
    }
    let new = NewWebhook {
        tenant_id: actor.tenant_id,
        board_id: input.board_id,
        url,
        description,
        event_types,
        secret: crate::webhooks::new_secret(),
        enabled: input.enabled,
        created_by: Some(actor.user_id),
    };
    Ok(webhooks::insert(conn, &new).await?)
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    rules: &WebhookRules,
    id: Uuid,
    input: UpdateWebhook,
) -> AppResult<Webhook> {
    let current = administered(conn, actor, id).await?;
    let changes = WebhookChanges {
        url: match input.url {
            Some(u) => Some(check_url(&u, rules).await?),
            None => None,
        },
        description: check_description(input.description)?,
        event_types: input
            .event_types
            .as_deref()
            .map(check_event_types)
            .transpose()?,
        enabled: input.enabled,
    };
    if changes.url.is_none()
        && changes.description.is_none()
        && changes.event_types.is_none()
        && changes.enabled.is_none()
    {
        return Ok(current);
    }
    webhooks::update(conn, id, &changes)
        .await?
        .ok_or_else(|| AppError::not_found("Webhook not found"))
}

pub async fn delete(conn: &mut AsyncPgConnection, actor: &Actor, id: Uuid) -> AppResult<()> {
    administered(conn, actor, id).await?;
    if !webhooks::delete(conn, id).await? {
        return Err(AppError::not_found("Webhook not found"));
    }
    Ok(())
}

/// A new signing secret; the previous one keeps signing for `rules.rotation_grace`.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    rules: &WebhookRules,
    id: Uuid,
) -> AppResult<Webhook> {
    administered(conn, actor, id).await?;
    let grace = chrono::Duration::from_std(rules.rotation_grace)
        .unwrap_or_else(|_| chrono::Duration::days(1));
    webhooks::rotate_secret(conn, id, &crate::webhooks::new_secret(), Utc::now() + grace)
        .await?
        .ok_or_else(|| AppError::not_found("Webhook not found"))
}

/// Queues a `webhook.test` delivery (whatever the endpoint subscribed to, enabled or not).
pub async fn send_test(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Delivery> {
    let webhook = administered(conn, actor, id).await?;
    let payload = json!({
        "type": TEST_EVENT,
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {"webhook_id": webhook.id, "board_id": webhook.board_id},
    });
    Ok(webhooks::insert_delivery(conn, webhook.id, TEST_EVENT, &payload).await?)
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    limit: i64,
    offset: i64,
) -> AppResult<Vec<Delivery>> {
    administered(conn, actor, id).await?;
    Ok(webhooks::list_deliveries(conn, id, limit, offset).await?)
}

/// Sends delivery `id` again, with the same `webhook-id`.
pub async fn resend(conn: &mut AsyncPgConnection, actor: &Actor, id: Uuid) -> AppResult<Delivery> {
    let missing = || AppError::not_found("Webhook delivery not found");
    let (delivery, webhook) = webhooks::find_delivery(conn, id)
        .await?
        .ok_or_else(missing)?;
    administered(conn, actor, webhook.id)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => missing(),
            e => e,
        })?;
    if delivery.state() == crate::db::models::DeliveryStatus::Pending {
        return Err(AppError::Conflict(
            "The delivery is still pending: it is being sent or will be retried".into(),
        ));
    }
    webhooks::resend(conn, id).await?.ok_or_else(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_checked_deduplicated_and_ordered() {
        let got = check_event_types(&[
            "generation.failed".into(),
            " generation.completed".into(),
            "generation.failed".into(),
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                Some("generation.completed".to_string()),
                Some("generation.failed".to_string())
            ]
        );
        assert!(check_event_types(&[]).is_err());
        let err = check_event_types(&["board.exploded".into()]).unwrap_err();
        assert!(err.to_string().contains("generation.created"), "{err}");
    }
}
