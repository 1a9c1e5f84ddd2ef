//! `Webhook`, `WebhookDelivery` and `WebhookSecret` (issue 12).

use boards_shared::{
    db::models::{Delivery, DeliveryStatus, Webhook},
    webhooks::{display_secret, message_id},
};
use chrono::{DateTime, Utc};
use juniper::{graphql_object, GraphQLEnum, GraphQLInputObject};
use uuid::Uuid;

use crate::graphql::{
    context::Context,
    scalars::{BoardsScalar, Json},
};

/// An endpoint that receives a board's events. Its secret is shown only when it is created
/// or rotated (`WebhookSecret`).
pub struct WebhookObj(pub Webhook);

#[graphql_object(name = "Webhook", context = Context, scalar = BoardsScalar)]
impl WebhookObj {
    fn id(&self) -> Uuid {
        self.0.id
    }
    fn board_id(&self) -> Uuid {
        self.0.board_id
    }
    fn url(&self) -> &str {
        &self.0.url
    }
    fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// `generation.created`, `generation.completed`, `generation.failed`, `generation.cancelled`.
    fn event_types(&self) -> Vec<String> {
        self.0.events().map(str::to_string).collect()
    }
    fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Until when the previous secret also signs (after a rotation).
    fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0
            .previous_secret_expires_at
            .filter(|t| *t > Utc::now())
    }
    fn created_by(&self) -> Option<Uuid> {
        self.0.created_by
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A webhook with its signing secret (`whsec_…`), returned by `createWebhook` and
/// `rotateWebhookSecret` only.
pub struct WebhookSecretObj(pub Webhook);

#[graphql_object(name = "WebhookSecret", context = Context, scalar = BoardsScalar)]
impl WebhookSecretObj {
    fn webhook(&self) -> WebhookObj {
        WebhookObj(self.0.clone())
    }
    fn secret(&self) -> String {
        display_secret(&self.0.secret)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, GraphQLEnum)]
pub enum WebhookDeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl From<DeliveryStatus> for WebhookDeliveryStatus {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Failed => Self::Failed,
        }
    }
}

/// One event sent (or to be sent) to one webhook, with the outcome of its last attempt.
pub struct WebhookDeliveryObj(pub Delivery);

#[graphql_object(name = "WebhookDelivery", context = Context, scalar = BoardsScalar)]
impl WebhookDeliveryObj {
    fn id(&self) -> Uuid {
        self.0.id
    }
    fn webhook_id(&self) -> Uuid {
        self.0.webhook_id
    }
    /// The `webhook-id` header: the same on every attempt and on a resend.
    fn message_id(&self) -> String {
        message_id(self.0.id)
    }
    fn event_type(&self) -> &str {
        &self.0.event_type
    }
    fn status(&self) -> WebhookDeliveryStatus {
        self.0.state().into()
    }
    fn attempts(&self) -> i32 {
        self.0.attempts
    }
    fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }
    fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The body sent: `{type, timestamp, data}`.
    fn payload(&self) -> Json {
        Json::new(self.0.payload.clone())
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
}

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct CreateWebhookInput {
    pub board_id: Uuid,
    /// http or https; not an address on the server's own network.
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    #[graphql(default = true)]
    pub enabled: Option<bool>,
}

#[derive(Debug, GraphQLInputObject)]
#[graphql(scalar = BoardsScalar)]
pub struct UpdateWebhookInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}
