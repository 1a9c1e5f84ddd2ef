//! The served schema: `api/schema.graphql` is its snapshot, and every difference from the
//! original's reference SDL is listed (exactly) in `docs/compat.md`.

use std::collections::{BTreeMap, BTreeSet};

use graphql_parser::schema::{parse_schema, Definition, TypeDefinition};

/// The original's schema as printed by Strawberry (copied from `shared/spec/` of the contract).
const REFERENCE: &str = include_str!("../fixtures/schema.reference.graphql");

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `kind Type` → member → signature (descriptions ignored; order ignored).
fn shape(sdl: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let doc = parse_schema::<String>(sdl).unwrap();
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let Definition::TypeDefinition(t) = def else {
            continue;
        };
        let (key, members): (String, BTreeMap<String, String>) = match t {
            TypeDefinition::Scalar(s) => (
                format!("scalar {}", s.name),
                s.directives
                    .iter()
                    .map(|d| (format!("@{}", d.name), format!("{:?}", d.arguments)))
                    .collect(),
            ),
            TypeDefinition::Object(o) => (
                format!("type {}", o.name),
                o.fields
                    .iter()
                    .map(|f| {
                        let args = f
                            .arguments
                            .iter()
                            .map(|a| match &a.default_value {
                                Some(d) => format!("{}: {} = {}", a.name, a.value_type, d),
                                None => format!("{}: {}", a.name, a.value_type),
                            })
                            .collect::<Vec<_>>();
                        let args = if args.is_empty() {
                            String::new()
                        } else {
                            format!("({})", args.join(", "))
                        };
                        (f.name.clone(), format!("{args}: {}", f.field_type))
                    })
                    .collect(),
            ),
            TypeDefinition::InputObject(i) => (
                format!("input {}", i.name),
                i.fields
                    .iter()
                    .map(|f| {
                        let sig = match &f.default_value {
                            Some(d) => format!("{} = {}", f.value_type, d),
                            None => format!("{}", f.value_type),
                        };
                        (f.name.clone(), sig)
                    })
                    .collect(),
            ),
            TypeDefinition::Enum(e) => (
                format!("enum {}", e.name),
                e.values
                    .iter()
                    .map(|v| (v.name.clone(), String::new()))
                    .collect(),
            ),
            other => (format!("{other:?}"), BTreeMap::new()),
        };
        out.insert(key, members);
    }
    out
}

fn differences(reference: &str, ours: &str) -> BTreeSet<String> {
    let (r, o) = (shape(reference), shape(ours));
    let mut diff = BTreeSet::new();
    for (t, members) in &r {
        match o.get(t) {
            None => {
                diff.insert(format!("- {t}"));
            }
            Some(ours) => {
                for (m, sig) in members {
                    match ours.get(m) {
                        None => {
                            diff.insert(format!("- {t}.{m}{sig}"));
                        }
                        Some(s) if s != sig => {
                            diff.insert(format!("~ {t}.{m}{sig} => {m}{s}"));
                        }
                        _ => {}
                    }
                }
                for (m, sig) in ours {
                    if !members.contains_key(m) {
                        diff.insert(format!("+ {t}.{m}{sig}"));
                    }
                }
            }
        }
    }
    for t in o.keys().filter(|t| !r.contains_key(*t)) {
        diff.insert(format!("+ {t}"));
    }
    diff
}

fn listed_in_compat() -> BTreeSet<String> {
    let doc = repo_file("docs/compat.md");
    let start = doc
        .find("```sdl-diff\n")
        .expect("docs/compat.md has an sdl-diff block")
        + 12;
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn the_schema_snapshot_is_current() {
    let served = boards_api::graphql::sdl();
    let committed = repo_file("api/schema.graphql");
    assert!(
        served == committed,
        "api/schema.graphql is stale: run `make sdl` and review the change"
    );
}

#[test]
fn every_difference_from_the_reference_sdl_is_documented() {
    let actual = differences(REFERENCE, &boards_api::graphql::sdl());
    let listed = listed_in_compat();
    let unlisted: Vec<_> = actual.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&actual).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "docs/compat.md sdl-diff block is out of date.\nNot listed:\n{}\nListed but gone:\n{}",
        unlisted
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        stale
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}
