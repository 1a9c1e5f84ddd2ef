//! Turns request `variables` (raw JSON) into juniper variables, guided by the operation's
//! variable types: values at `JSON` positions, however deeply nested in input objects or lists,
//! become one [`BoardsScalar::Json`] scalar, so juniper's validator accepts objects and lists
//! there. Everything else converts as juniper itself would, and juniper validates it as usual.

use juniper::{
    meta::MetaType,
    parser::{parse_document_source, Spanning},
    Definition, InputValue, SchemaType, Variables,
};
use serde_json::{Map, Value};

use super::scalars::BoardsScalar;

const JSON_SCALAR: &str = "JSON";

/// The declared type of each variable of one operation.
pub type VariableShapes = Vec<(String, TypeShape)>;

/// The variable types of the operation `operation_name` of `query` (empty if it does not
/// parse: execution reports the parse error).
pub fn shapes(
    schema: &SchemaType<BoardsScalar>,
    query: &str,
    operation_name: Option<&str>,
) -> VariableShapes {
    let Ok(document) = parse_document_source::<BoardsScalar>(query, schema) else {
        return vec![];
    };
    let mut operations = document.iter().filter_map(|d| match d {
        Definition::Operation(op) => Some(&op.item),
        Definition::Fragment(_) => None,
    });
    let operation = match operation_name {
        Some(name) => operations.find(|op| op.name.as_ref().map(|n| n.item) == Some(name)),
        None => operations.next(),
    };
    operation
        .and_then(|op| op.variables_definition.as_ref())
        .map(|defs| {
            defs.item
                .iter()
                .map(|(var, def)| {
                    (
                        var.item.to_string(),
                        TypeShape::parse(&def.var_type.item.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Converts `variables` using the operation's variable types.
pub fn coerce(
    schema: &SchemaType<BoardsScalar>,
    shapes: &VariableShapes,
    variables: Map<String, Value>,
) -> Variables<BoardsScalar> {
    variables
        .into_iter()
        .map(|(name, value)| {
            let converted = match shapes.iter().find(|(n, _)| *n == name) {
                Some((_, shape)) => typed(schema, value, shape),
                None => untyped(value),
            };
            (name, converted)
        })
        .collect()
}

/// A GraphQL type reference (`[Foo!]!`), parsed from its printed form because juniper keeps
/// its type modifiers private.
#[derive(Debug, PartialEq)]
pub enum TypeShape {
    Named(String),
    NonNull(Box<TypeShape>),
    List(Box<TypeShape>),
}

impl TypeShape {
    fn parse(printed: &str) -> Self {
        let t = printed.trim();
        if let Some(inner) = t.strip_suffix('!') {
            Self::NonNull(Box::new(Self::parse(inner)))
        } else if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Self::List(Box::new(Self::parse(inner)))
        } else {
            Self::Named(t.to_string())
        }
    }
}

fn typed(
    schema: &SchemaType<BoardsScalar>,
    value: Value,
    shape: &TypeShape,
) -> InputValue<BoardsScalar> {
    let name = match shape {
        TypeShape::NonNull(inner) => return typed(schema, value, inner),
        TypeShape::List(inner) => {
            return match value {
                Value::Array(items) => {
                    InputValue::list(items.into_iter().map(|v| typed(schema, v, inner)).collect())
                }
                Value::Null => InputValue::Null,
                // Input coercion of a single value into a list position.
                v => typed(schema, v, inner),
            };
        }
        TypeShape::Named(name) => name.as_str(),
    };
    match (schema.concrete_type_by_name(name), value) {
        (_, Value::Null) => InputValue::Null,
        (Some(MetaType::Scalar(meta)), v) if meta.name.as_str() == JSON_SCALAR => {
            InputValue::Scalar(BoardsScalar::Json(std::sync::Arc::new(v)))
        }
        (Some(MetaType::InputObject(meta)), Value::Object(fields)) => {
            // Spec input coercion: an absent field takes its default value. (juniper's variable
            // validation would otherwise refuse an absent non-null field that has a default.)
            let defaults = meta
                .input_fields
                .iter()
                .filter(|f| !fields.contains_key(f.name.as_str()))
                .filter_map(|f| {
                    let default = f.default_value.clone()?;
                    Some((
                        Spanning::unlocated(f.name.to_string()),
                        Spanning::unlocated(default),
                    ))
                })
                .collect::<Vec<_>>();
            let given = fields.into_iter().map(|(key, v)| {
                let field = meta.input_fields.iter().find(|f| f.name.as_str() == key);
                let converted = match field {
                    Some(f) => typed(schema, v, &TypeShape::parse(&f.arg_type.to_string())),
                    None => untyped(v),
                };
                (Spanning::unlocated(key), Spanning::unlocated(converted))
            });
            InputValue::parsed_object(given.chain(defaults).collect())
        }
        (_, v) => untyped(v),
    }
}

/// The conversion juniper applies to JSON variables.
fn untyped(value: Value) -> InputValue<BoardsScalar> {
    match value {
        Value::Null => InputValue::Null,
        Value::Bool(b) => InputValue::scalar(b),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => InputValue::scalar(i),
            None => InputValue::scalar(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => InputValue::scalar(s),
        Value::Array(items) => InputValue::list(items.into_iter().map(untyped).collect()),
        Value::Object(fields) => InputValue::parsed_object(
            fields
                .into_iter()
                .map(|(k, v)| (Spanning::unlocated(k), Spanning::unlocated(untyped(v))))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::TypeShape::{self, *};

    #[test]
    fn type_references_parse() {
        assert_eq!(TypeShape::parse("JSON"), Named("JSON".into()));
        assert_eq!(
            TypeShape::parse("[JSON!]!"),
            NonNull(Box::new(List(Box::new(NonNull(Box::new(Named(
                "JSON".into()
            )))))))
        );
    }
}
