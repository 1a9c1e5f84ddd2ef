//! Parsed and validated documents, cached by query text: clients send the same few documents
//! over and over, and parsing plus validation (juniper's overlapping-fields rule above all) is
//! work the answer does not depend on. Variables are still checked on every execution.

use std::sync::Arc;

use juniper::{EmptySubscription, GraphQLError, ValidatedOperation};
use self_cell::self_cell;

use super::{
    mutation::Mutation,
    query::Query,
    scalars::BoardsScalar,
    variables::{self, VariableShapes},
    Context, Schema,
};

pub struct Source {
    schema: Arc<Schema>,
    query: String,
    operation_name: Option<String>,
}

type Validated<'a> =
    ValidatedOperation<'a, Query, Mutation, EmptySubscription<Context>, BoardsScalar>;

self_cell!(
    /// A validated operation together with the text it borrows from.
    pub struct CachedOperation {
        owner: Source,
        #[covariant]
        dependent: Validated,
    }
);

/// The validated operation and its variable types.
pub struct Prepared {
    pub operation: CachedOperation,
    pub shapes: VariableShapes,
}

/// Keyed by a hash of (query, operation name), so a lookup allocates nothing; a hit is
/// confirmed against the stored text.
pub struct DocumentCache {
    cache: moka::sync::Cache<u64, Arc<Prepared>>,
}

fn key(query: &str, operation_name: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    // Keys only need to be stable within the process.
    let mut h = std::hash::DefaultHasher::new();
    query.hash(&mut h);
    operation_name.hash(&mut h);
    h.finish()
}

impl DocumentCache {
    /// Holds documents up to `max_bytes` of query text in total.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .weigher(|_k: &u64, v: &Arc<Prepared>| {
                    u32::try_from(v.operation.borrow_owner().query.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(max_bytes)
                .build(),
        }
    }

    /// The prepared operation for `query`, validating it on first sight.
    pub fn get(
        &self,
        schema: &Arc<Schema>,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, GraphQLError> {
        let key = key(query, operation_name);
        if let Some(hit) = self.cache.get(&key) {
            let source = hit.operation.borrow_owner();
            if source.query == query && source.operation_name.as_deref() == operation_name {
                return Ok(hit);
            }
        }
        let source = Source {
            schema: schema.clone(),
            query: query.to_string(),
            operation_name: operation_name.map(str::to_string),
        };
        let operation = CachedOperation::try_new(source, |s| {
            ValidatedOperation::new(&s.query, s.operation_name.as_deref(), s.schema.as_ref())
        })?;
        let shapes = variables::shapes(&schema.schema, query, operation_name);
        let prepared = Arc::new(Prepared { operation, shapes });
        self.cache.insert(key, prepared.clone());
        Ok(prepared)
    }
}
