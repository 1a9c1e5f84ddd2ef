//! `[Generation!]!` with fast paths. A board page of 100 generations is ~1,700 fields, and
//! juniper's per-field machinery cost more than everything else in the request (profiled):
//!
//! 1. a selection of plain columns only (the client's `GenerationFragment`: fields, aliases,
//!    fragments, no directives) is written straight into juniper values, one object per row;
//! 2. a selection without I/O otherwise (e.g. `additionalFiles { … }`) uses juniper's
//!    synchronous resolver instead of one boxed future per field;
//! 3. anything else takes the normal async path.
//!
//! Rows whose stored enums are unknown always take the juniper path, so errors stay the same.

use bigdecimal::ToPrimitive as _;
use juniper::{
    macros::reflect::{BaseSubTypes, BaseType, Type, Types, WrappedType, WrappedValue},
    meta::MetaType,
    ArcStr, BoxFuture, ExecutionResult, Executor, GraphQLType, GraphQLValue, GraphQLValueAsync,
    Object, Registry, Selection, Value,
};

use super::{
    direct::direct_fields,
    enums::{ArtifactType, GenerationStatus},
    GenerationObj,
};
use crate::graphql::{
    context::Context,
    scalars::{isoformat, BoardsScalar},
};

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

/// Columns written directly (no sub-selection, no arguments).
const DIRECT_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "tenantId",
    "boardId",
    "userId",
    "generatorName",
    "artifactType",
    "storageUrl",
    "thumbnailUrl",
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

fn text(v: &str) -> Value<BoardsScalar> {
    Value::scalar(v.to_string())
}

fn opt_text(v: Option<&str>) -> Value<BoardsScalar> {
    v.map_or(Value::Null, text)
}

fn time(v: Option<&chrono::DateTime<chrono::Utc>>) -> Value<BoardsScalar> {
    v.map_or(Value::Null, |t| Value::scalar(isoformat(t)))
}

/// One generation as a juniper object, or `None` if a stored enum is unknown.
fn direct_object(
    g: &GenerationObj,
    fields: &[(&str, &str)],
    storage: &dyn boards_shared::storage::Storage,
) -> Option<Value<BoardsScalar>> {
    let row = &g.row;
    let mut obj = Object::with_capacity(fields.len());
    for (key, field) in fields {
        let value = match *field {
            "__typename" => text("Generation"),
            "id" => Value::scalar(row.id.hyphenated().to_string()),
            "tenantId" => Value::scalar(row.tenant_id.hyphenated().to_string()),
            "boardId" => Value::scalar(row.board_id.hyphenated().to_string()),
            "userId" => Value::scalar(row.user_id.hyphenated().to_string()),
            "generatorName" => text(&row.generator_name),
            "artifactType" => text(enum_name(ArtifactType::from_db(&row.artifact_type).ok()?)),
            "status" => text(status_name(GenerationStatus::from_db(&row.status).ok()?)),
            "storageUrl" => opt_text(g.url(storage, "storage_key").as_deref()),
            "thumbnailUrl" => opt_text(g.url(storage, "thumbnail_key").as_deref()),
            "externalJobId" => opt_text(row.external_job_id.as_deref()),
            "errorMessage" => opt_text(row.error_message.as_deref()),
            "inputParams" => Value::Scalar(BoardsScalar::Json(g.shared_input_params().0.clone())),
            "outputMetadata" => {
                Value::Scalar(BoardsScalar::Json(g.shared_output_metadata().0.clone()))
            }
            "progress" => Value::scalar(row.progress.to_f64().unwrap_or(0.0)),
            "startedAt" => time(row.started_at.as_ref()),
            "completedAt" => time(row.completed_at.as_ref()),
            "createdAt" => time(Some(&row.created_at)),
            "updatedAt" => time(Some(&row.updated_at)),
            _ => return None,
        };
        obj.add_field(*key, value);
    }
    Some(Value::Object(obj))
}

fn enum_name(t: ArtifactType) -> &'static str {
    match t {
        ArtifactType::Image => "IMAGE",
        ArtifactType::Video => "VIDEO",
        ArtifactType::Audio => "AUDIO",
        ArtifactType::Text => "TEXT",
        ArtifactType::Lora => "LORA",
        ArtifactType::Model => "MODEL",
    }
}

fn status_name(s: GenerationStatus) -> &'static str {
    match s {
        GenerationStatus::Pending => "PENDING",
        GenerationStatus::Processing => "PROCESSING",
        GenerationStatus::Completed => "COMPLETED",
        GenerationStatus::Failed => "FAILED",
        GenerationStatus::Cancelled => "CANCELLED",
    }
}

impl GenerationList {
    /// The direct path, when the selection and every row allow it.
    fn resolve_direct(
        &self,
        selection: &[Selection<'_, BoardsScalar>],
        executor: &Executor<'_, '_, Context, BoardsScalar>,
    ) -> Option<Value<BoardsScalar>> {
        let mut fields = vec![];
        let is_direct = |f: &str| DIRECT_FIELDS.contains(&f);
        direct_fields(
            "Generation",
            &is_direct,
            selection,
            executor,
            &mut fields,
            0,
        )?;
        let items = self
            .0
            .iter()
            .map(|g| direct_object(g, &fields, executor.context().state.storage.as_ref()))
            .collect::<Option<Vec<_>>>()?;
        Some(Value::List(items))
    }
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
        if let Some(value) = selection_set.and_then(|s| self.resolve_direct(s, executor)) {
            return Box::pin(std::future::ready(Ok(value)));
        }
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
