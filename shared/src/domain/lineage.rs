//! Lineage (contract §2.6): `input_artifacts` entries, and the ancestry / descendants trees.
//!
//! The reachable generations come from one recursive SQL query per direction (cycle-safe);
//! the trees are then built in memory, following simple paths only (a generation is never its
//! own ancestor in the output, even with cyclic data) and within fixed budgets, so hostile data
//! can neither loop nor blow up. Generations on boards the caller may not read are left out.

use std::collections::{HashMap, HashSet};

use diesel_async::AsyncPgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::access;
use crate::{
    db::models::{boards, generations, Generation},
    AppResult,
};

/// Keeps `root` and the generations on boards `viewer` may read.
async fn visible(
    conn: &mut AsyncPgConnection,
    root: Uuid,
    reached: Vec<Generation>,
    viewer: Option<Uuid>,
) -> AppResult<HashMap<Uuid, Generation>> {
    let mut board_ids: Vec<Uuid> = reached.iter().map(|g| g.board_id).collect();
    board_ids.sort();
    board_ids.dedup();
    let found = boards::find_many(conn, &board_ids).await?;
    let readable: HashSet<Uuid> = access::readable(conn, found, viewer)
        .await?
        .into_iter()
        .map(|b| b.id)
        .collect();
    Ok(reached
        .into_iter()
        .filter(|g| g.id == root || readable.contains(&g.board_id))
        .map(|g| (g.id, g))
        .collect())
}

/// Largest accepted `maxDepth` (larger values are clamped).
pub const MAX_DEPTH: i32 = 100;
/// Path steps explored while assigning depths.
const PATH_BUDGET: usize = 20_000;
/// Nodes materialised in one tree.
const NODE_BUDGET: usize = 2_000;

/// One `input_artifacts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineageEntry {
    /// The referenced generation id as stored (may be malformed in legacy data).
    pub generation_id: String,
    pub role: String,
    pub artifact_type: String,
}

impl LineageEntry {
    pub fn id(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.generation_id).ok()
    }
}

/// The stored entries in stored order; entries that are not objects are skipped.
pub fn entries(input_artifacts: &Value) -> Vec<LineageEntry> {
    let text = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    input_artifacts
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e.is_object())
                .map(|e| LineageEntry {
                    generation_id: text(e, "generation_id"),
                    role: text(e, "role"),
                    artifact_type: text(e, "artifact_type"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A node of an ancestry or descendants tree.
#[derive(Clone, Debug)]
pub struct TreeNode {
    pub generation: Generation,
    pub depth: i32,
    pub role: Option<String>,
    /// Parents (ancestry) or children (descendants).
    pub next: Vec<TreeNode>,
}

struct Row {
    id: Uuid,
    depth: i32,
    parent: Option<Uuid>,
    role: Option<String>,
}

/// Depth-first over simple paths from `root`, up to `max_depth` steps, within the path budget.
fn walk(root: Uuid, max_depth: i32, edges: &HashMap<Uuid, Vec<(Uuid, String)>>) -> Vec<Row> {
    let mut rows = vec![Row {
        id: root,
        depth: 0,
        parent: None,
        role: None,
    }];
    let mut stack: Vec<(Uuid, i32, Vec<Uuid>)> = vec![(root, 0, vec![root])];
    let mut steps = 0;
    while let Some((id, depth, path)) = stack.pop() {
        if depth >= max_depth {
            continue;
        }
        for (next, role) in edges.get(&id).into_iter().flatten().rev() {
            if path.contains(next) {
                continue;
            }
            steps += 1;
            if steps > PATH_BUDGET {
                return rows;
            }
            rows.push(Row {
                id: *next,
                depth: depth + 1,
                parent: Some(id),
                role: Some(role.clone()),
            });
            let mut p = path.clone();
            p.push(*next);
            stack.push((*next, depth + 1, p));
        }
    }
    rows
}

/// For each id, the row that comes last in (depth, id) order: its deepest occurrence.
fn deepest(mut rows: Vec<Row>) -> HashMap<Uuid, Row> {
    rows.sort_by_key(|r| (r.depth, r.id));
    rows.into_iter().map(|r| (r.id, r)).collect()
}

/// `ancestry(maxDepth)`: `root` and, recursively, the generations its inputs came from.
pub async fn ancestry(
    conn: &mut AsyncPgConnection,
    root: Generation,
    tenant_id: Uuid,
    viewer: Option<Uuid>,
    max_depth: i32,
) -> AppResult<TreeNode> {
    let max_depth = max_depth.min(MAX_DEPTH);
    if root.tenant_id != tenant_id || max_depth <= 0 {
        return Ok(TreeNode {
            generation: root,
            depth: 0,
            role: None,
            next: vec![],
        });
    }
    let reached = generations::ancestors_within(conn, root.id, tenant_id, max_depth).await?;
    let by_id = visible(conn, root.id, reached, viewer).await?;
    let edges: HashMap<Uuid, Vec<(Uuid, String)>> = by_id
        .values()
        .map(|g| {
            let parents = entries(&g.input_artifacts)
                .into_iter()
                .filter_map(|e| {
                    e.id()
                        .filter(|id| by_id.contains_key(id))
                        .map(|id| (id, e.role))
                })
                .collect();
            (g.id, parents)
        })
        .collect();
    let logical = deepest(walk(root.id, max_depth, &edges));
    let mut budget = NODE_BUDGET;
    let mut path = vec![root.id];
    let next = ancestry_parents(
        root.id,
        0,
        max_depth,
        &edges,
        &by_id,
        &logical,
        &mut path,
        &mut budget,
    );
    Ok(TreeNode {
        generation: root,
        depth: 0,
        role: None,
        next,
    })
}

#[allow(clippy::too_many_arguments)]
fn ancestry_parents(
    id: Uuid,
    level: i32,
    max_depth: i32,
    edges: &HashMap<Uuid, Vec<(Uuid, String)>>,
    by_id: &HashMap<Uuid, Generation>,
    logical: &HashMap<Uuid, Row>,
    path: &mut Vec<Uuid>,
    budget: &mut usize,
) -> Vec<TreeNode> {
    if level >= max_depth {
        return vec![];
    }
    let mut out = vec![];
    for (parent, _) in edges.get(&id).into_iter().flatten() {
        let (Some(generation), Some(row)) = (by_id.get(parent), logical.get(parent)) else {
            continue;
        };
        if path.contains(parent) || *budget == 0 {
            continue;
        }
        *budget -= 1;
        path.push(*parent);
        let next = ancestry_parents(
            *parent,
            level + 1,
            max_depth,
            edges,
            by_id,
            logical,
            path,
            budget,
        );
        path.pop();
        out.push(TreeNode {
            generation: generation.clone(),
            depth: row.depth,
            role: row.role.clone(),
            next,
        });
    }
    out
}

/// `descendants(maxDepth)`: `root` and, recursively, the generations made from it. Each
/// generation appears once, under the parent of its deepest occurrence.
pub async fn descendants(
    conn: &mut AsyncPgConnection,
    root: Generation,
    tenant_id: Uuid,
    viewer: Option<Uuid>,
    max_depth: i32,
) -> AppResult<TreeNode> {
    let max_depth = max_depth.min(MAX_DEPTH);
    if root.tenant_id != tenant_id || max_depth <= 0 {
        return Ok(TreeNode {
            generation: root,
            depth: 0,
            role: None,
            next: vec![],
        });
    }
    let reached = generations::descendants_within(conn, root.id, tenant_id, max_depth).await?;
    let by_id = visible(conn, root.id, reached, viewer).await?;
    // parent -> [(child, role)], the role being the last entry of the child naming the parent.
    let mut edges: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
    let mut ids: Vec<&Uuid> = by_id.keys().collect();
    ids.sort();
    for child in ids {
        let mut roles: HashMap<Uuid, String> = HashMap::new();
        for e in entries(&by_id[child].input_artifacts) {
            if let Some(parent) = e.id().filter(|p| by_id.contains_key(p) && p != child) {
                roles.insert(parent, e.role);
            }
        }
        for (parent, role) in roles {
            edges.entry(parent).or_default().push((*child, role));
        }
    }
    for list in edges.values_mut() {
        list.sort_by_key(|(c, _)| *c);
    }
    let logical = deepest(walk(root.id, max_depth, &edges));
    let mut children: HashMap<Uuid, Vec<&Row>> = HashMap::new();
    let mut ordered: Vec<&Row> = logical.values().filter(|r| r.id != root.id).collect();
    ordered.sort_by_key(|r| (r.depth, r.id));
    for row in ordered {
        if let Some(parent) = row.parent {
            children.entry(parent).or_default().push(row);
        }
    }
    let mut seen = HashSet::from([root.id]);
    let mut budget = NODE_BUDGET;
    let next = descendant_children(root.id, &children, &by_id, &mut seen, &mut budget);
    Ok(TreeNode {
        generation: root,
        depth: 0,
        role: None,
        next,
    })
}

fn descendant_children(
    id: Uuid,
    children: &HashMap<Uuid, Vec<&Row>>,
    by_id: &HashMap<Uuid, Generation>,
    seen: &mut HashSet<Uuid>,
    budget: &mut usize,
) -> Vec<TreeNode> {
    let mut out = vec![];
    for row in children.get(&id).into_iter().flatten() {
        if *budget == 0 || !seen.insert(row.id) {
            continue;
        }
        let Some(generation) = by_id.get(&row.id) else {
            continue;
        };
        *budget -= 1;
        let next = descendant_children(row.id, children, by_id, seen, budget);
        out.push(TreeNode {
            generation: generation.clone(),
            depth: row.depth,
            role: row.role.clone(),
            next,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entries_keep_order_and_skip_junk() {
        let v = json!([
            {"generation_id": "a", "role": "image_url", "artifact_type": "image"},
            "junk",
            {"generation_id": "b", "role": "input"}
        ]);
        let e = entries(&v);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].artifact_type, "");
        assert!(entries(&json!({"not": "a list"})).is_empty());
    }

    #[test]
    fn walking_a_cycle_terminates_on_simple_paths() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let edges = HashMap::from([
            (a, vec![(b, "x".to_string())]),
            (b, vec![(c, "y".to_string())]),
            (c, vec![(a, "z".to_string())]),
        ]);
        let rows = walk(a, 25, &edges);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.depth <= 2));
    }
}
