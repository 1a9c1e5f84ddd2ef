//! Query cost: what a document may make the server load and write, known before it runs.
//!
//! Every selected field costs 1, a `JSON` field [`JSON_FIELD`] (its value can be kilobytes);
//! an object field costs 1 plus, for each object, its children and the weight of the row
//! behind it (a generation row is loaded whole, JSON columns included, whatever is selected:
//! [`row_weight`]); a list field multiplies that by the page it asks for: its `limit` argument
//! (a literal, a variable, or the argument's default; clamped to the page-size maximum, as the
//! resolvers clamp it), the page maximum for the lists the resolvers cap at it
//! (`User.boards`, `User.memberBoards`), or [`UNBOUNDED_LIST`] for the short lists without a
//! `limit` (members, tags, lineage links). Aliases and fragment spreads
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

/// What loading one object of `type_name` weighs beyond its selected fields: the JSON columns
/// its row carries (each stored document is at most 16 KiB).
pub fn row_weight(type_name: &str) -> u64 {
    match type_name {
        // input_params, output_metadata, input_artifacts, additional_files.
        "Generation" => 2 * JSON_FIELD,
        // settings, metadata.
        "Board" => JSON_FIELD,
        "Tag" => JSON_FIELD,
        _ => 0,
    }
}

/// Lists without a `limit` that the resolvers cap at the page maximum.
fn capped_at_page(parent: &str, field: &str) -> bool {
    matches!((parent, field), ("User", "boards" | "memberBoards"))
}

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
    /// The weight of each object's row ([`row_weight`]).
    item: u64,
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

    /// Fields in the plan, fragments expanded (what the plan holds in memory).
    pub fn nodes(&self) -> usize {
        fn count(fields: &[FieldCost]) -> usize {
            fields.iter().map(|f| 1 + count(&f.children)).sum()
        }
        count(&self.fields)
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
        let each = f.item.saturating_add(children);
        acc.saturating_add(f.own.saturating_add(n.saturating_mul(each)))
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
                item: 0,
                children: vec![],
            };
        };
        let child_type = meta.and_then(|m| {
            self.schema
                .concrete_type_by_name(m.field_type.innermost_name())
        });
        let parent_name = parent.and_then(MetaType::name).map_or("", |n| n.as_str());
        let multiplier = match meta {
            // (Read from the printed type: juniper's `Type::is_list` misses `[T!]!`.)
            Some(m) if m.field_type.to_string().starts_with('[') => {
                if capped_at_page(parent_name, name) {
                    Multiplier::Fixed(self.max_page)
                } else {
                    self.page_of(args, m)
                }
            }
            _ => Multiplier::One,
        };
        // Introspection: the schema does not list `__schema`/`__type` as fields of the root,
        // but their types are known, so the lists inside (types, fields, args) count too.
        let child_type = child_type.or_else(|| match name {
            "__schema" => self.schema.concrete_type_by_name("__Schema"),
            "__type" => self.schema.concrete_type_by_name("__Type"),
            _ => None,
        });
        FieldCost {
            own: 1,
            multiplier,
            item: child_type
                .and_then(MetaType::name)
                .map_or(0, |n| row_weight(n.as_str())),
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
        let board = row_weight("Board");
        // Default page (50): 1 + 50 × (row + 1 id + 1 title).
        assert_eq!(
            plan("{ publicBoards { id title } }").evaluate(&Map::new()),
            1 + 50 * (board + 2)
        );
        assert_eq!(
            plan("{ publicBoards(limit: 10) { id } }").evaluate(&Map::new()),
            1 + 10 * (board + 1)
        );
        // Clamped to the maximum page.
        assert_eq!(
            plan("{ publicBoards(limit: 100000) { id } }").evaluate(&Map::new()),
            1 + 500 * (board + 1)
        );
        // Nested lists multiply; every generation weighs its row too.
        let nested = plan(
            "{ publicBoards(limit: 500) { generations(limit: 500) { id inputParams outputMetadata } } }",
        );
        assert_eq!(
            nested.evaluate(&Map::new()),
            1 + 500 * (board + 1 + 500 * (row_weight("Generation") + 1 + 2 * JSON_FIELD))
        );
    }

    #[test]
    fn variables_and_their_defaults_decide_the_page() {
        let p = plan("query($n: Int = 7) { publicBoards(limit: $n) { id } }");
        let each = row_weight("Board") + 1;
        assert_eq!(p.evaluate(&Map::new()), 1 + 7 * each);
        assert_eq!(p.evaluate(&vars(json!({"n": 3}))), 1 + 3 * each);
        assert_eq!(p.evaluate(&vars(json!({"n": null}))), 1 + 50 * each);
        assert_eq!(p.evaluate(&vars(json!({"n": 0}))), 1 + 50 * each);
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
        assert_eq!(spread, 1 + 2 * (row_weight("Board") + 4));
    }

    #[test]
    fn lists_without_a_limit_use_the_nominal_size() {
        let p = plan("query($id: UUID!) { board(id: $id) { members { id } } }");
        assert_eq!(
            p.evaluate(&Map::new()),
            1 + row_weight("Board") + 1 + UNBOUNDED_LIST
        );
    }

    #[test]
    fn user_board_lists_count_as_full_pages() {
        // Resolvers cap them at the page maximum, and an attacker can own that many boards.
        let p = plan("{ publicBoards(limit: 10) { owner { boards { id } } } }");
        let board = row_weight("Board");
        assert_eq!(
            p.evaluate(&Map::new()),
            1 + 10 * (board + 1 + (1 + 500 * (board + 1)))
        );
    }

    /// The introspection query GraphiQL sends (types, fields, arguments, nested type refs).
    const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name }
        mutationType { name } subscriptionType { name } types { ...FullType }
        directives { name description locations args { ...InputValue } } } }
      fragment FullType on __Type { kind name description
        fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef }
          isDeprecated deprecationReason }
        inputFields { ...InputValue } interfaces { ...TypeRef }
        enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
        possibleTypes { ...TypeRef } }
      fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType {
        kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

    #[test]
    fn introspection_is_costed_and_graphiqls_query_fits() {
        let cost = plan(INTROSPECTION).evaluate(&Map::new());
        let max = boards_shared::Config::default().graphql.max_cost;
        assert!(cost > 1000 && cost < max, "{cost}");
        // Many aliases of it do not.
        let many: String = (0..500)
            .map(|i| format!("a{i}: __schema {{ types {{ fields {{ name }} }} }} "))
            .collect();
        assert!(plan(&format!("{{ {many} }}")).evaluate(&Map::new()) > max);
    }
}
