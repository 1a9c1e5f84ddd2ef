//! GraphQL object, input and enum types. Objects wrap database models; nested fields go
//! through the request's loaders.

pub mod board;
pub mod direct;
pub mod enums;
pub mod generation;
pub mod generation_list;
pub mod generator;
pub mod inputs;
pub mod lineage;
pub mod member;
pub mod tag;
pub mod user;
pub mod webhook;

pub use board::BoardObj;
pub use generation::GenerationObj;
pub use generation_list::GenerationList;
pub use member::BoardMemberObj;
pub use tag::TagObj;
pub use user::UserObj;

use juniper::GraphQLObject;

use super::scalars::BoardsScalar;

/// The result of a mutation that returns nothing but its outcome.
#[derive(Clone, Copy, Debug, GraphQLObject)]
#[graphql(scalar = BoardsScalar)]
pub struct OperationResult {
    pub success: bool,
}

impl OperationResult {
    pub const SUCCESS: Self = Self { success: true };
}
