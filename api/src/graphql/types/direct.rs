//! [`Fast<T>`]: an object whose plain-column selections are written straight into juniper
//! values, skipping juniper's per-field executors (see `generation_list.rs` for why). Any
//! selection with directives, arguments, sub-selections or computed fields is resolved by `T`
//! as usual.

use juniper::{
    macros::reflect::{BaseSubTypes, BaseType, Type, Types, WrappedType, WrappedValue},
    marker::IsOutputType,
    meta::MetaType,
    ArcStr, Arguments, BoxFuture, ExecutionResult, Executor, GraphQLType, GraphQLValue,
    GraphQLValueAsync, Object, Registry, Selection, Value,
};

use crate::graphql::{context::Context, scalars::BoardsScalar};

/// An object type that can produce some of its fields without juniper.
pub trait DirectFields {
    /// The GraphQL type name (for `__typename` and fragment type conditions).
    const TYPE: &'static str;
    /// The value of a plain-column field; `None` when `field` is not one.
    fn direct(&self, field: &str) -> Option<Value<BoardsScalar>>;
}

/// Flattens a selection into `(response key, field)` pairs when every selected field is a
/// plain column of `type_name` (as judged by `is_direct`); `None` otherwise.
pub fn direct_fields<'s>(
    type_name: &str,
    is_direct: &dyn Fn(&str) -> bool,
    selection: &'s [Selection<'s, BoardsScalar>],
    executor: &'s Executor<'_, '_, Context, BoardsScalar>,
    out: &mut Vec<(&'s str, &'s str)>,
    depth: usize,
) -> Option<()> {
    if depth > 8 {
        return None;
    }
    for s in selection {
        match s {
            Selection::Field(f) => {
                let f = &f.item;
                if f.directives.is_some() || f.arguments.is_some() || f.selection_set.is_some() {
                    return None;
                }
                let name = f.name.item;
                if name != "__typename" && !is_direct(name) {
                    return None;
                }
                let key = f.alias.as_ref().map_or(name, |a| a.item);
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, name));
                }
            }
            Selection::FragmentSpread(spread) => {
                if spread.item.directives.is_some() {
                    return None;
                }
                let frag = executor.fragment_by_name(spread.item.name.item)?;
                if frag.type_condition.item != type_name || frag.directives.is_some() {
                    return None;
                }
                direct_fields(
                    type_name,
                    is_direct,
                    &frag.selection_set,
                    executor,
                    out,
                    depth + 1,
                )?;
            }
            Selection::InlineFragment(inline) => {
                let i = &inline.item;
                if i.directives.is_some()
                    || i.type_condition
                        .as_ref()
                        .is_some_and(|t| t.item != type_name)
                {
                    return None;
                }
                direct_fields(
                    type_name,
                    is_direct,
                    &i.selection_set,
                    executor,
                    out,
                    depth + 1,
                )?;
            }
        }
    }
    Some(())
}

pub struct Fast<T>(pub T);

impl<T: DirectFields> Fast<T> {
    fn resolve_direct(
        &self,
        selection: &[Selection<'_, BoardsScalar>],
        executor: &Executor<'_, '_, Context, BoardsScalar>,
    ) -> Option<Value<BoardsScalar>> {
        let mut fields = vec![];
        let probe = |f: &str| self.0.direct(f).is_some();
        direct_fields(T::TYPE, &probe, selection, executor, &mut fields, 0)?;
        let mut obj = Object::with_capacity(fields.len());
        for (key, field) in fields {
            let value = if field == "__typename" {
                Value::scalar(T::TYPE.to_string())
            } else {
                self.0.direct(field)?
            };
            obj.add_field(key, value);
        }
        Some(Value::Object(obj))
    }
}

impl<T> GraphQLType<BoardsScalar> for Fast<T>
where
    T: GraphQLType<BoardsScalar, Context = Context, TypeInfo = ()>,
{
    fn name(info: &()) -> Option<ArcStr> {
        T::name(info)
    }

    fn meta(info: &(), registry: &mut Registry<BoardsScalar>) -> MetaType<BoardsScalar> {
        T::meta(info, registry)
    }
}

impl<T> GraphQLValue<BoardsScalar> for Fast<T>
where
    T: GraphQLValue<BoardsScalar, Context = Context, TypeInfo = ()>,
{
    type Context = Context;
    type TypeInfo = ();

    fn type_name(&self, info: &()) -> Option<ArcStr> {
        self.0.type_name(info)
    }

    fn resolve_field(
        &self,
        info: &(),
        field_name: &str,
        arguments: &Arguments<BoardsScalar>,
        executor: &Executor<Context, BoardsScalar>,
    ) -> ExecutionResult<BoardsScalar> {
        self.0.resolve_field(info, field_name, arguments, executor)
    }

    fn concrete_type_name(&self, context: &Context, info: &()) -> String {
        self.0.concrete_type_name(context, info)
    }

    fn resolve(
        &self,
        info: &(),
        selection_set: Option<&[Selection<BoardsScalar>]>,
        executor: &Executor<Context, BoardsScalar>,
    ) -> ExecutionResult<BoardsScalar> {
        self.0.resolve(info, selection_set, executor)
    }
}

impl<T> GraphQLValueAsync<BoardsScalar> for Fast<T>
where
    T: GraphQLValueAsync<BoardsScalar, Context = Context, TypeInfo = ()> + DirectFields + Sync,
{
    fn resolve_field_async<'a>(
        &'a self,
        info: &'a (),
        field_name: &'a str,
        arguments: &'a Arguments<BoardsScalar>,
        executor: &'a Executor<Context, BoardsScalar>,
    ) -> BoxFuture<'a, ExecutionResult<BoardsScalar>> {
        self.0
            .resolve_field_async(info, field_name, arguments, executor)
    }

    fn resolve_async<'a>(
        &'a self,
        info: &'a (),
        selection_set: Option<&'a [Selection<'_, BoardsScalar>]>,
        executor: &'a Executor<'_, '_, Context, BoardsScalar>,
    ) -> BoxFuture<'a, ExecutionResult<BoardsScalar>> {
        if let Some(value) = selection_set.and_then(|s| self.resolve_direct(s, executor)) {
            return Box::pin(std::future::ready(Ok(value)));
        }
        self.0.resolve_async(info, selection_set, executor)
    }
}

impl<T> IsOutputType<BoardsScalar> for Fast<T> where
    T: IsOutputType<BoardsScalar> + GraphQLType<BoardsScalar, Context = Context, TypeInfo = ()>
{
}

impl<T: BaseType<BoardsScalar>> BaseType<BoardsScalar> for Fast<T> {
    const NAME: Type = T::NAME;
}

impl<T: BaseSubTypes<BoardsScalar>> BaseSubTypes<BoardsScalar> for Fast<T> {
    const NAMES: Types = T::NAMES;
}

impl<T: WrappedType<BoardsScalar>> WrappedType<BoardsScalar> for Fast<T> {
    const VALUE: WrappedValue = T::VALUE;
}
