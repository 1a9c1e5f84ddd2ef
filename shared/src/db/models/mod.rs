//! One module per table: a read struct, insert/change structs and the queries on that table.
//! Functions take `&mut AsyncPgConnection` so that callers own transactions.

pub mod board_members;
pub mod boards;
pub mod generations;
pub mod job_runs;
pub mod outbox;
pub mod tags;
pub mod tenant_members;
pub mod tenants;
pub mod users;
pub mod webhooks;

pub use board_members::BoardMember;
pub use boards::Board;
pub use generations::Generation;
pub use tags::Tag;
pub use tenant_members::{TenantMember, TenantRole};
pub use tenants::{Tenant, TenantStatus};
pub use users::User;
pub use webhooks::{Delivery, DeliveryStatus, Webhook};
