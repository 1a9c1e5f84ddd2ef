//! The GraphQL API: juniper schema, types, resolvers and the HTTP transport at `/graphql`.

pub mod cache;
pub mod context;
pub mod cost;
pub mod errors;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod scalars;
pub mod transport;
pub mod types;
pub mod variables;

use boards_shared::config::GraphqlConfig;
use juniper::{EmptySubscription, RootNode};

pub use context::Context;
pub use scalars::BoardsScalar;

pub type Schema =
    RootNode<query::Query, mutation::Mutation, EmptySubscription<Context>, BoardsScalar>;

/// Builds the schema once, with the configured document limits.
pub fn build_schema(config: &GraphqlConfig) -> Schema {
    let schema =
        Schema::new_with_scalar_value(query::Query, mutation::Mutation, EmptySubscription::new())
            .limit_depth(config.max_depth)
            .limit_fields(config.max_fields)
            .limit_tokens(config.max_tokens);
    if config.introspection {
        schema
    } else {
        schema.disable_introspection()
    }
}

/// The schema in SDL, as committed in `api/schema.graphql`.
pub fn sdl() -> String {
    build_schema(&boards_shared::Config::default().graphql).as_sdl()
}
