//! Domain rules shared by every entry point: who may do what (§0.4) and the board and member
//! operations with their checks in the contract's order. Functions take a connection so the
//! caller owns the transaction, and return [`crate::AppError`] with client-safe messages.

pub mod access;
pub mod boards;
pub mod generations;
pub mod inputs;
pub mod lineage;
pub mod members;
pub mod paging;
pub mod registration;
pub mod tags;
pub mod tenant_members;
pub mod tenants;
pub mod text;
pub mod uploads;
pub mod webhooks;

use uuid::Uuid;

/// An authenticated caller acting on the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
}
