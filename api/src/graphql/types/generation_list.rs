//! `[Generation!]!` with a fast path: when the selection on each generation asks only for
//! fields that need no I/O (the client's `GenerationFragment`), the whole list is resolved with
//! juniper's synchronous resolver instead of one boxed future per field. A board page of 100
//! generations is ~1,700 fields; the async machinery cost more than everything else in the
//! request (profiled). Any other selection takes the normal async path.

use juniper::{
    macros::reflect::{BaseSubTypes, BaseType, Type, Types, WrappedType, WrappedValue},
    meta::MetaType,
    ArcStr, BoxFuture, ExecutionResult, Executor, GraphQLType, GraphQLValue, GraphQLValueAsync,
    Registry, Selection,
};

use super::GenerationObj;
use crate::graphql::{context::Context, scalars::BoardsScalar};

pub struct GenerationList(pub Vec<GenerationObj>);

/// `Generation` fields resolved without I/O (their sub-selections, if any, too).
const SYNC_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "tenantId",
    "boardId",
    "userId",
    "generatorName",
    "artifactType",
    "storageUrl",
    "thumbnailUrl",
    "additionalFiles",
    "inputParams",
    "outputMetadata",
    "externalJobId",
    "status",
    "progress",
    "errorMessage",
    "startedAt",
    "completedAt",
    "createdAt",
    "updatedAt",
];

/// Whether every field selected on a `Generation` (through fragments too) is in [`SYNC_FIELDS`].
fn sync_only(
    selection: &[Selection<'_, BoardsScalar>],
    executor: &Executor<'_, '_, Context, BoardsScalar>,
    depth: usize,
) -> bool {
    if depth > 8 {
        return false;
    }
    selection.iter().all(|s| match s {
        Selection::Field(f) => SYNC_FIELDS.contains(&f.item.name.item),
        Selection::FragmentSpread(spread) => executor
            .fragment_by_name(spread.item.name.item)
            .is_some_and(|frag| {
                frag.type_condition.item == "Generation"
                    && sync_only(&frag.selection_set, executor, depth + 1)
            }),
        Selection::InlineFragment(inline) => {
            inline
                .item
                .type_condition
                .as_ref()
                .is_none_or(|t| t.item == "Generation")
                && sync_only(&inline.item.selection_set, executor, depth + 1)
        }
    })
}

impl GraphQLType<BoardsScalar> for GenerationList {
    fn name(_: &()) -> Option<ArcStr> {
        None
    }

    fn meta(info: &(), registry: &mut Registry<BoardsScalar>) -> MetaType<BoardsScalar> {
        <Vec<GenerationObj> as GraphQLType<BoardsScalar>>::meta(info, registry)
    }
}

impl GraphQLValue<BoardsScalar> for GenerationList {
    type Context = Context;
    type TypeInfo = ();

    fn type_name(&self, _: &()) -> Option<ArcStr> {
        None
    }

    fn resolve(
        &self,
        info: &(),
        selection_set: Option<&[Selection<'_, BoardsScalar>]>,
        executor: &Executor<'_, '_, Context, BoardsScalar>,
    ) -> ExecutionResult<BoardsScalar> {
        GraphQLValue::resolve(&self.0, info, selection_set, executor)
    }
}

impl GraphQLValueAsync<BoardsScalar> for GenerationList {
    fn resolve_async<'a>(
        &'a self,
        info: &'a (),
        selection_set: Option<&'a [Selection<'_, BoardsScalar>]>,
        executor: &'a Executor<'_, '_, Context, BoardsScalar>,
    ) -> BoxFuture<'a, ExecutionResult<BoardsScalar>> {
        if selection_set.is_some_and(|s| sync_only(s, executor, 0)) {
            let value = GraphQLValue::resolve(&self.0, info, selection_set, executor);
            Box::pin(std::future::ready(value))
        } else {
            GraphQLValueAsync::resolve_async(&self.0, info, selection_set, executor)
        }
    }
}

impl juniper::marker::IsOutputType<BoardsScalar> for GenerationList {}

impl BaseType<BoardsScalar> for GenerationList {
    const NAME: Type = <Vec<GenerationObj> as BaseType<BoardsScalar>>::NAME;
}

impl BaseSubTypes<BoardsScalar> for GenerationList {
    const NAMES: Types = <Vec<GenerationObj> as BaseSubTypes<BoardsScalar>>::NAMES;
}

impl WrappedType<BoardsScalar> for GenerationList {
    const VALUE: WrappedValue = <Vec<GenerationObj> as WrappedType<BoardsScalar>>::VALUE;
}
