//! Query cost: what a document may make the server load and write, known before it runs.
//!
//! Every selected field costs 1, a `JSON` field [`JSON_FIELD`] (its value can be kilobytes);
//! an object field costs 1 plus its children; a list field
//! multiplies its children by the page it asks for: its `limit` argument (a literal, a
//! variable, or the argument's default; clamped to the page-size maximum, as the resolvers
//! clamp it), or [`UNBOUNDED_LIST`] for lists without a `limit`. Aliases and fragment spreads
//! count every time they appear. The plan is built once per cached document; only the
//! variable `limit`s are filled in per request.

use juniper::{
    meta::MetaType,
    parser::{parse_document_source, Spanning},
    Definition, InputValue, SchemaType, Selection,
};
use serde_json::{Map, Value};

use super::scalars::BoardsScalar;

/// Assumed length of a list field that has no `limit` (members, tags, lineage links; a whole
/// lineage tree is capped at 2,000 nodes by the resolver, so nested levels multiply a
/// generous estimate rather than a bound).
pub const UNBOUNDED_LIST: u64 = 10;

/// Cost of a `JSON` leaf (input parameters, metadata, input schemas).
pub const JSON_FIELD: u64 = 10;

/// How many items a list field yields.
#[derive(Clone, Debug, PartialEq)]
enum Multiplier {
    /// Not a list.
    One,
    Fixed(u64),
    /// A page whose size comes from a variable (or its defaults).
    Variable {
        name: String,
        /// The variable's own default (`$limit: Int = 20`), if any.
        var_default: Option<i64>,
        /// The argument's default in the schema (what `null`/`0` mean).
        arg_default: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
struct FieldCost {
    /// The field's own cost (1, or [`JSON_FIELD`]).
    own: u64,
    multiplier: Multiplier,
    children: Vec<FieldCost>,
}

/// The cost of one operation, ready to be evaluated with a request's variables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostPlan {
    fields: Vec<FieldCost>,
    max_page: u64,
}

/// A page size as the resolvers compute it: `null`, `0` or negative → the default (negative
/// values are refused by the resolver anyway); otherwise clamped to the maximum.
fn page(requested: Option<i64>, default: u64, max: u64) -> u64 {
    match requested {
        Some(n) if n > 0 => (n as u64).min(max),
        _ => default.min(max),
    }
}

impl CostPlan {
    /// The plan of operation `operation_name` of `query` (an empty plan if it does not parse:
    /// execution reports the error). `max_page` is the page-size maximum.
    pub fn build(
        schema: &SchemaType<BoardsScalar>,
        query: &str,
        operation_name: Option<&str>,
        max_page: u64,
    ) -> Self {
        let Ok(document) = parse_document_source::<BoardsScalar>(query, schema) else {
            return Self::default();
        };
        let mut fragments = std::collections::HashMap::new();
        let mut operation = None;
        for definition in &document {
            match definition {
                Definition::Fragment(f) => {
                    fragments.insert(
                        f.item.name.item,
                        (f.item.type_condition.item, f.item.selection_set.as_slice()),
                    );
                }
                Definition::Operation(op) => {
                    let wanted = match operation_name {
                        Some(name) => op.item.name.as_ref().map(|n| n.item) == Some(name),
                        None => operation.is_none(),
                    };
                    if wanted {
                        operation = Some(&op.item);
                    }
                }
            }
        }
        let Some(operation) = operation else {
            return Self::default();
        };
        let var_defaults: Vec<(String, Option<i64>)> = operation
            .variables_definition
            .as_ref()
            .map(|defs| {
                defs.item
                    .iter()
                    .map(|(name, def)| {
                        let default = def.default_value.as_ref().and_then(|d| int_of(&d.item));
                        (name.item.to_string(), default)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let root_type = match operation.operation_type {
            juniper::OperationType::Query => Some(schema.concrete_query_type()),
            juniper::OperationType::Mutation => schema.concrete_mutation_type(),
            juniper::OperationType::Subscription => None,
        };
        let walker = Walker {
            schema,
            fragments: &fragments,
            var_defaults: &var_defaults,
            max_page,
        };
        Self {
            fields: walker.selections(&operation.selection_set, root_type, 0),
            max_page,
        }
    }

    /// The cost with `variables` (raw request JSON) filled in; saturates instead of
    /// overflowing.
    pub fn evaluate(&self, variables: &Map<String, Value>) -> u64 {
        sum(&self.fields, variables, self.max_page)
    }
}

fn sum(fields: &[FieldCost], vars: &Map<String, Value>, max_page: u64) -> u64 {
    fields.iter().fold(0u64, |acc, f| {
        let n = match &f.multiplier {
            Multiplier::One => 1,
            Multiplier::Fixed(n) => *n,
            Multiplier::Variable {
                name,
                var_default,
                arg_default,
            } => {
                let given = match vars.get(name) {
                    Some(Value::Null) => None,
                    Some(v) => v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)),
                    None => *var_default,
                };
                page(given, *arg_default, max_page)
            }
        };
        let children = if f.children.is_empty() {
            0
        } else {
            sum(&f.children, vars, max_page)
        };
        acc.saturating_add(f.own.saturating_add(n.saturating_mul(children)))
    })
}

fn int_of(v: &InputValue<BoardsScalar>) -> Option<i64> {
    match v {
        InputValue::Scalar(BoardsScalar::Int(i)) => Some(i64::from(*i)),
        InputValue::Scalar(BoardsScalar::Float(f)) => Some(*f as i64),
        _ => None,
    }
}

/// A fragment's type condition and selections, by name.
type Fragments<'d, 'a> =
    std::collections::HashMap<&'a str, (&'a str, &'d [Selection<'a, BoardsScalar>])>;

/// A field's arguments as written.
type Args<'d, 'a> = &'d [(Spanning<&'a str>, Spanning<InputValue<BoardsScalar>>)];

struct Walker<'s, 'd, 'a> {
    schema: &'s SchemaType<BoardsScalar>,
    fragments: &'s Fragments<'d, 'a>,
    var_defaults: &'s [(String, Option<i64>)],
    max_page: u64,
}

/// Fragments nest at most this deep (validation already refuses cycles).
const MAX_NESTING: usize = 64;

impl Walker<'_, '_, '_> {
    fn selections(
        &self,
        selections: &[Selection<'_, BoardsScalar>],
        parent: Option<&MetaType<BoardsScalar>>,
        nesting: usize,
    ) -> Vec<FieldCost> {
        if nesting > MAX_NESTING {
            return vec![];
        }
        let mut out = vec![];
        for selection in selections {
            match selection {
                Selection::Field(field) => {
                    let field = &field.item;
                    let args = field.arguments.as_ref().map(|a| a.item.items.as_slice());
                    out.push(self.field(
                        field.name.item,
                        args,
                        field.selection_set.as_deref(),
                        parent,
                        nesting,
                    ));
                }
                Selection::FragmentSpread(spread) => {
                    if let Some((on, selections)) = self.fragments.get(spread.item.name.item) {
                        let on = self.schema.concrete_type_by_name(on).or(parent);
                        out.extend(self.selections(selections, on, nesting + 1));
                    }
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .item
                        .type_condition
                        .as_ref()
                        .and_then(|t| self.schema.concrete_type_by_name(t.item))
                        .or(parent);
                    out.extend(self.selections(&inline.item.selection_set, on, nesting + 1));
                }
            }
        }
        out
    }

    fn field(
        &self,
        name: &str,
        args: Option<Args<'_, '_>>,
        selection: Option<&[Selection<'_, BoardsScalar>]>,
        parent: Option<&MetaType<BoardsScalar>>,
        nesting: usize,
    ) -> FieldCost {
        let meta = parent.and_then(|p| p.field_by_name(name));
        let Some(selection) = selection else {
            let json = meta.is_some_and(|m| m.field_type.innermost_name() == "JSON");
            return FieldCost {
                own: if json { JSON_FIELD } else { 1 },
                multiplier: Multiplier::One,
                children: vec![],
            };
        };
        let child_type = meta.and_then(|m| {
            self.schema
                .concrete_type_by_name(m.field_type.innermost_name())
        });
        let multiplier = match meta {
            // (Read from the printed type: juniper's `Type::is_list` misses `[T!]!`.)
            Some(m) if m.field_type.to_string().starts_with('[') => self.page_of(args, m),
            // Introspection and other fields the schema does not list: counted by selection.
            _ => Multiplier::One,
        };
        FieldCost {
            own: 1,
            multiplier,
            children: self.selections(selection, child_type, nesting + 1),
        }
    }

    fn page_of(
        &self,
        args: Option<Args<'_, '_>>,
        meta: &juniper::meta::Field<BoardsScalar>,
    ) -> Multiplier {
        let Some(limit_arg) = meta
            .arguments
            .as_ref()
            .and_then(|args| args.iter().find(|a| a.name == "limit"))
        else {
            return Multiplier::Fixed(UNBOUNDED_LIST);
        };
        let arg_default = limit_arg
            .default_value
            .as_ref()
            .and_then(int_of)
            .map_or(self.max_page, |d| d.max(0) as u64);
        let given = args.and_then(|args| {
            args.iter()
                .find(|(name, _)| name.item == "limit")
                .map(|(_, value)| value)
        });
        match given.map(|v: &Spanning<InputValue<BoardsScalar>>| &v.item) {
            None | Some(InputValue::Null) => {
                Multiplier::Fixed(page(None, arg_default, self.max_page))
            }
            Some(InputValue::Variable(name)) => Multiplier::Variable {
                name: name.clone(),
                var_default: self
                    .var_defaults
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, d)| *d),
                arg_default,
            },
            Some(v) => Multiplier::Fixed(page(int_of(v), arg_default, self.max_page)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(query: &str) -> CostPlan {
        let schema = crate::graphql::build_schema(&boards_shared::Config::default().graphql);
        CostPlan::build(&schema.schema, query, None, 500)
    }

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn scalars_cost_one_and_objects_add_their_children() {
        let p = plan("{ me { id email } }");
        assert_eq!(p.evaluate(&Map::new()), 3);
    }

    #[test]
    fn lists_multiply_by_their_page() {
        // Default page (50): 1 + 50 × (1 id + 1 title).
        assert_eq!(
            plan("{ publicBoards { id title } }").evaluate(&Map::new()),
            101
        );
        assert_eq!(
            plan("{ publicBoards(limit: 10) { id } }").evaluate(&Map::new()),
            11
        );
        // Clamped to the maximum page.
        assert_eq!(
            plan("{ publicBoards(limit: 100000) { id } }").evaluate(&Map::new()),
            501
        );
        // Nested lists multiply.
        let nested = plan("{ publicBoards(limit: 500) { generations(limit: 500) { id inputParams outputMetadata } } }");
        assert_eq!(
            nested.evaluate(&Map::new()),
            1 + 500 * (1 + 500 * (1 + 2 * JSON_FIELD))
        );
    }

    #[test]
    fn variables_and_their_defaults_decide_the_page() {
        let p = plan("query($n: Int = 7) { publicBoards(limit: $n) { id } }");
        assert_eq!(p.evaluate(&Map::new()), 8);
        assert_eq!(p.evaluate(&vars(json!({"n": 3}))), 4);
        assert_eq!(p.evaluate(&vars(json!({"n": null}))), 51);
        assert_eq!(p.evaluate(&vars(json!({"n": 0}))), 51);
    }

    #[test]
    fn aliases_and_fragment_spreads_count_every_time() {
        let one = plan("{ a: publicBoards(limit: 2) { id } }").evaluate(&Map::new());
        let two = plan("{ a: publicBoards(limit: 2) { id } b: publicBoards(limit: 2) { id } }")
            .evaluate(&Map::new());
        assert_eq!(two, 2 * one);
        let spread =
            plan("query { publicBoards(limit: 2) { ...F ...F } } fragment F on Board { id title }")
                .evaluate(&Map::new());
        assert_eq!(spread, 1 + 2 * 4);
    }

    #[test]
    fn lists_without_a_limit_use_the_nominal_size() {
        let p = plan("query($id: UUID!) { board(id: $id) { members { id } } }");
        assert_eq!(p.evaluate(&Map::new()), 1 + 1 + UNBOUNDED_LIST);
    }
}
