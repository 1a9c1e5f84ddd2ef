//! `boards.webhooks` and `boards.webhook_deliveries` (issue 12). Delivery rows are written by a
//! trigger on `boards.generations` (and here, for test events and resends); the API's relay
//! publishes them, workers send them and record each attempt.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::tables::{webhook_deliveries, webhooks};

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::pg::Pg))]
pub struct Webhook {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub board_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<Option<String>>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// The event types it wants.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.event_types.iter().flatten().map(String::as_str)
    }

    /// The keys that sign a delivery sent at `now`: the current one, and the previous one
    /// until it expires.
    pub fn signing_keys(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut keys = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret, self.previous_secret_expires_at)
        {
            if until > now {
                keys.push(previous);
            }
        }
        keys
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhooks)]
pub struct NewWebhook {
    pub tenant_id: Uuid,
    pub board_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<Option<String>>,
    pub secret: String,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = webhooks)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<Option<String>>>,
    pub enabled: Option<bool>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewWebhook) -> QueryResult<Webhook> {
    diesel::insert_into(webhooks::table)
        .values(new)
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Webhook>> {
    webhooks::table
        .find(id)
        .select(Webhook::as_select())
        .first(conn)
        .await
        .optional()
}

/// A board's webhooks, oldest first.
pub async fn list_for_board(
    conn: &mut AsyncPgConnection,
    board_id: Uuid,
) -> QueryResult<Vec<Webhook>> {
    webhooks::table
        .filter(webhooks::board_id.eq(board_id))
        .order((webhooks::created_at.asc(), webhooks::id.asc()))
        .select(Webhook::as_select())
        .load(conn)
        .await
}

pub async fn count_for_board(conn: &mut AsyncPgConnection, board_id: Uuid) -> QueryResult<i64> {
    webhooks::table
        .filter(webhooks::board_id.eq(board_id))
        .count()
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &WebhookChanges,
) -> QueryResult<Option<Webhook>> {
    diesel::update(webhooks::table.find(id))
        .set(changes)
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Replaces the signing key; the old one keeps signing until `previous_until`.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    secret: &str,
    previous_until: DateTime<Utc>,
) -> QueryResult<Option<Webhook>> {
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::previous_secret.eq(webhooks::secret.nullable()),
            webhooks::previous_secret_expires_at.eq(previous_until),
            webhooks::secret.eq(secret),
        ))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(webhooks::table.find(id))
        .execute(conn)
        .await?
        > 0)
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting to be sent, or to be retried.
    Pending,
    Delivered,
    /// Refused for good (a 4xx), or out of attempts.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub published: bool,
    pub publish_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The trace of the change that caused it (or of its resend), when it ran in one.
    pub traceparent: Option<String>,
}

impl Delivery {
    pub fn state(&self) -> DeliveryStatus {
        DeliveryStatus::parse(&self.status).unwrap_or(DeliveryStatus::Pending)
    }
}

/// Queues one delivery of `payload` (its relay publishes it), sent in the current task's
/// trace.
pub async fn insert_delivery(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_type: &str,
    payload: &Value,
) -> QueryResult<Delivery> {
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::webhook_id.eq(webhook_id),
            webhook_deliveries::event_type.eq(event_type),
            webhook_deliveries::payload.eq(payload),
            webhook_deliveries::traceparent.eq(crate::trace::current().map(|t| t.header())),
        ))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_delivery(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<(Delivery, Webhook)>> {
    webhook_deliveries::table
        .inner_join(webhooks::table)
        .filter(webhook_deliveries::id.eq(id))
        .select((Delivery::as_select(), Webhook::as_select()))
        .first(conn)
        .await
        .optional()
}

/// A webhook's deliveries, newest first.
pub async fn list_deliveries(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Delivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order((
            webhook_deliveries::created_at.desc(),
            webhook_deliveries::id.desc(),
        ))
        .limit(limit)
        .offset(offset)
        .select(Delivery::as_select())
        .load(conn)
        .await
}

/// Sends a settled delivery again (same message id): back to pending and to the relay, in the
/// trace of the resend (the current task's). `None` when it is unknown or still pending.
pub async fn resend(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Delivery>> {
    let trace = crate::trace::current().map(|t| t.header());
    diesel::update(
        webhook_deliveries::table
            .find(id)
            .filter(webhook_deliveries::status.ne(DeliveryStatus::Pending.as_str())),
    )
    .set((
        webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()),
        webhook_deliveries::published.eq(false),
        webhook_deliveries::publish_after.eq(diesel::dsl::now),
        webhook_deliveries::traceparent.eq(trace),
    ))
    .returning(Delivery::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub status: DeliveryStatus,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// Records one attempt on a delivery that is still pending (a delivery already settled, say
/// delivered by a duplicate message, is left alone): `false` when nothing was recorded.
pub async fn record_attempt(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: &Attempt,
) -> QueryResult<bool> {
    let delivered_at = (attempt.status == DeliveryStatus::Delivered).then(chrono::Utc::now);
    let n = diesel::update(
        webhook_deliveries::table
            .find(id)
            .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str())),
    )
    .set((
        webhook_deliveries::status.eq(attempt.status.as_str()),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
        webhook_deliveries::last_status_code.eq(attempt.status_code),
        webhook_deliveries::last_error.eq(&attempt.error),
        webhook_deliveries::delivered_at.eq(delivered_at),
    ))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Deletes settled deliveries created before `before` (retention): how many.
pub async fn delete_settled_before(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::created_at.lt(before))
            .filter(webhook_deliveries::status.ne(DeliveryStatus::Pending.as_str())),
    )
    .execute(conn)
    .await
}
