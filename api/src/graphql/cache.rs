//! Parsed and validated documents, cached by query text: clients send the same few documents
//! over and over, and parsing plus validation (juniper's overlapping-fields rule above all) is
//! work the answer does not depend on. Variables are still checked on every execution. The
//! cache is bounded by the estimated memory of its entries, and anonymous callers only get a
//! small share of it.

use std::sync::Arc;

use juniper::{EmptySubscription, GraphQLError, ValidatedOperation};
use self_cell::self_cell;

use super::{
    cost::CostPlan,
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

/// The validated operation, its variable types and its cost plan.
pub struct Prepared {
    pub operation: CachedOperation,
    pub shapes: VariableShapes,
    pub cost: CostPlan,
}

/// Memory one cached document is estimated to take: a fixed part (the operation, its maps,
/// the cache entry), a part per byte of query text (the parsed tree, variable shapes): about
/// 2 KiB per small document and 22 KiB per 40-alias document were measured as process growth
/// with 40,000 and 6,000 distinct ones; and a part per field of the cost plan, in which every
/// fragment spread is expanded (a short document of nested spreads can hold thousands).
fn weight(query: &str, plan_nodes: usize) -> u32 {
    let estimate = 2048 + 32 * query.len() as u64 + 96 * plan_nodes as u64;
    u32::try_from(estimate).unwrap_or(u32::MAX)
}

/// Keyed by a hash of (query, operation name), so a lookup allocates nothing; a hit is
/// confirmed against the stored text. Documents first seen from anonymous callers go to a
/// separate, smaller cache: anyone can send endless distinct documents, and they must not
/// push out what signed-in users (the client's few documents) need.
pub struct DocumentCache {
    cache: moka::sync::Cache<u64, Arc<Prepared>>,
    anonymous: moka::sync::Cache<u64, Arc<Prepared>>,
    max_page: u64,
}

fn key(query: &str, operation_name: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    // Keys only need to be stable within the process.
    let mut h = std::hash::DefaultHasher::new();
    query.hash(&mut h);
    operation_name.hash(&mut h);
    h.finish()
}

fn bounded(max_bytes: u64) -> moka::sync::Cache<u64, Arc<Prepared>> {
    moka::sync::Cache::builder()
        .weigher(|_k: &u64, v: &Arc<Prepared>| {
            weight(&v.operation.borrow_owner().query, v.cost.nodes())
        })
        .max_capacity(max_bytes)
        .build()
}

impl DocumentCache {
    /// Holds documents of an estimated `max_bytes` in total, an eighth of it for documents
    /// from anonymous callers. `max_page` is the page-size maximum (for cost plans).
    pub fn new(max_bytes: u64, max_page: u64) -> Self {
        Self {
            cache: bounded(max_bytes - max_bytes / 8),
            anonymous: bounded(max_bytes / 8),
            max_page,
        }
    }

    /// The prepared operation for `query`, validating it on first sight.
    pub fn get(
        &self,
        schema: &Arc<Schema>,
        query: &str,
        operation_name: Option<&str>,
        anonymous: bool,
    ) -> Result<Arc<Prepared>, GraphQLError> {
        let key = key(query, operation_name);
        let found = self
            .cache
            .get(&key)
            .or_else(|| self.anonymous.get(&key))
            .filter(|hit| {
                let source = hit.operation.borrow_owner();
                source.query == query && source.operation_name.as_deref() == operation_name
            });
        if let Some(hit) = found {
            return Ok(hit);
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
        let cost = CostPlan::build(&schema.schema, query, operation_name, self.max_page);
        let prepared = Arc::new(Prepared {
            operation,
            shapes,
            cost,
        });
        if anonymous {
            self.anonymous.insert(key, prepared.clone());
        } else {
            self.cache.insert(key, prepared.clone());
        }
        Ok(prepared)
    }

    /// (entries, estimated bytes) of the signed-in and the anonymous share.
    pub fn usage(&self) -> [(u64, u64); 2] {
        self.cache.run_pending_tasks();
        self.anonymous.run_pending_tasks();
        [
            (self.cache.entry_count(), self.cache.weighted_size()),
            (self.anonymous.entry_count(), self.anonymous.weighted_size()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Arc<Schema> {
        Arc::new(crate::graphql::build_schema(
            &boards_shared::Config::default().graphql,
        ))
    }

    #[test]
    fn many_distinct_anonymous_documents_stay_within_their_share() {
        let schema = schema();
        let cache = DocumentCache::new(8 * 1024 * 1024, 500);
        let client = "query GetBoards { myBoards { id title } }";
        cache.get(&schema, client, None, false).unwrap();
        for i in 0..40_000 {
            let q = format!("{{ a{i}: me {{ id }} }}");
            cache.get(&schema, &q, None, true).unwrap();
        }
        let [(signed_in, _), (anonymous, bytes)] = cache.usage();
        assert_eq!(signed_in, 1, "anonymous documents pushed out the client's");
        assert!(bytes <= 1024 * 1024, "{bytes} estimated bytes");
        assert!(anonymous < 1024 * 1024 / 2048, "{anonymous} entries");
        // Found again from either share.
        let again = cache.get(&schema, client, None, true).unwrap();
        assert!(Arc::ptr_eq(
            &again,
            &cache.get(&schema, client, None, false).unwrap()
        ));
    }

    #[test]
    fn entries_are_weighed_by_size_not_only_text() {
        let small = weight("{ me { id } }", 2);
        assert!(small >= 2048);
        let aliases: String = (0..40).map(|i| format!("a{i}: me {{ id }} ")).collect();
        assert!(weight(&format!("{{ {aliases} }}"), 80) > 5 * small);
        // Spreads expanded in the plan weigh what they hold, not what their text is.
        let text =
            "query { me { ...A } } fragment A on User { ...B ...B } fragment B on User { id }";
        assert!(weight(text, 2000) > 8 * weight(text, 3));
    }
}
