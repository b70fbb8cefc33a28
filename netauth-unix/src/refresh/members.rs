//! Effective group membership, computed locally with the server's rules.
//!
//! An entity is in group G if it is a direct member of G (G is named in the
//! entity's `meta.Groups`) or a member of any group G INCLUDEs, and it is a
//! member of none of the groups G EXCLUDEs. The rule is recursive: included
//! and excluded groups contribute their own *effective* members. Exclusion
//! wins over both direct membership and inclusion.
//!
//! Broken data is handled so that the computation always terminates in
//! polynomial time and does not depend on the order of the server's answers:
//!
//! - An expansion naming an unknown group, or with a mode other than
//!   `INCLUDE`/`EXCLUDE`, is ignored (and reported).
//! - NetAuth refuses to create expansion cycles, so a cycle means broken
//!   data: every expansion whose two ends lie on a common cycle (the same
//!   strongly connected component, including a group expanding itself) is
//!   ignored and reported. What remains is acyclic and is evaluated bottom-up
//!   once per group.
//! - A direct membership naming an unknown group is ignored.

use std::collections::HashMap;

/// How one group refers to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpansionMode {
    /// Members of the target are members of this group.
    Include,
    /// Members of the target are never members of this group.
    Exclude,
}

/// Parses one `Group.Expansions` entry, `MODE:groupname`.
pub fn parse_expansion(raw: &str) -> Option<(ExpansionMode, &str)> {
    let (mode, target) = raw.split_once(':')?;
    let mode = match mode {
        "INCLUDE" => ExpansionMode::Include,
        "EXCLUDE" => ExpansionMode::Exclude,
        _ => return None,
    };
    if target.is_empty() {
        return None;
    }
    Some((mode, target))
}

/// Something odd found while computing memberships; the computation went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipIssue {
    /// An expansion string that is not `INCLUDE:name` or `EXCLUDE:name`.
    BadExpansion { group: String, expansion: String },
    /// An expansion naming a group the server did not return.
    UnknownTarget { group: String, target: String },
    /// An expansion that lies on a cycle; ignored.
    Cycle { group: String, target: String },
}

/// The input: groups (by index) with their expansions, and each entity's
/// direct memberships (by group index).
pub struct MembershipInput<'a, D = Vec<&'a str>> {
    /// Group names; the index is the group's id in the rest of the input.
    pub group_names: Vec<&'a str>,
    /// Raw `Group.Expansions` per group (same indexing as `group_names`).
    pub group_expansions: Vec<Vec<&'a str>>,
    /// Per entity (index = entity id), the group names it is a direct member of.
    pub entity_direct_groups: Vec<D>,
}

/// One entity's direct groups, by name, however the caller holds them:
/// the refresh lends each entity's own list (a slice) rather than a list
/// of 100,000 new vectors.
pub trait GroupNames {
    fn each_name(&self, f: impl FnMut(&str));
}

impl GroupNames for Vec<&str> {
    fn each_name(&self, f: impl FnMut(&str)) {
        self.iter().copied().for_each(f);
    }
}

impl GroupNames for &[std::sync::Arc<str>] {
    fn each_name(&self, f: impl FnMut(&str)) {
        self.iter().map(|name| &**name).for_each(f);
    }
}

/// Effective members of every group, as sorted, deduplicated entity indexes.
#[derive(Debug, Default)]
pub struct Memberships {
    /// Indexed like `MembershipInput::group_names`.
    pub members: Vec<Vec<u32>>,
    /// Everything that was ignored along the way.
    pub issues: Vec<MembershipIssue>,
}

impl Memberships {
    /// Per entity, the sorted indexes of the groups it is an effective member of.
    pub fn groups_of_entities(&self, entity_count: usize) -> Vec<Vec<u32>> {
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); entity_count];
        for (g, members) in self.members.iter().enumerate() {
            for &e in members {
                if let Some(list) = out.get_mut(e as usize) {
                    list.push(g as u32);
                }
            }
        }
        out
    }
}

/// Computes the effective members of every group.
pub fn compute<D: GroupNames>(input: &MembershipInput<'_, D>) -> Memberships {
    let mut issues = Vec::new();
    let index = index_by_name(&input.group_names);
    let direct = direct_members(input, &index);
    let mut edges = expansion_edges(input, &index, &mut issues);
    drop_cycle_edges(input, &mut edges, &mut issues);
    let members = evaluate(direct, &edges);
    Memberships { members, issues }
}

/// Group name -> group index. Every index handed out below comes from this
/// map or from enumerating a vector of one element per group, so the
/// `get`s on such vectors never miss; they keep the code free of panic
/// paths.
fn index_by_name<'a>(group_names: &[&'a str]) -> HashMap<&'a str, u32> {
    // When a name is duplicated (the caller should have prevented it), the
    // first index wins deterministically.
    let mut index: HashMap<&str, u32> = HashMap::with_capacity(group_names.len());
    for (i, name) in group_names.iter().enumerate() {
        index.entry(*name).or_insert(i as u32);
    }
    index
}

/// Direct members (entity indexes) per group, unsorted.
fn direct_members<D: GroupNames>(
    input: &MembershipInput<'_, D>,
    index: &HashMap<&str, u32>,
) -> Vec<Vec<u32>> {
    let mut direct: Vec<Vec<u32>> = vec![Vec::new(); input.group_names.len()];
    for (e, groups) in input.entity_direct_groups.iter().enumerate() {
        groups.each_name(|g| {
            if let Some(list) = index.get(g).and_then(|&gi| direct.get_mut(gi as usize)) {
                list.push(e as u32);
            }
        });
    }
    direct
}

/// Per group, its well-formed expansions to known groups; the others are
/// reported.
fn expansion_edges<D>(
    input: &MembershipInput<'_, D>,
    index: &HashMap<&str, u32>,
    issues: &mut Vec<MembershipIssue>,
) -> Vec<Vec<(ExpansionMode, u32)>> {
    let mut edges: Vec<Vec<(ExpansionMode, u32)>> = vec![Vec::new(); input.group_names.len()];
    for ((group, exps), list) in input
        .group_names
        .iter()
        .zip(&input.group_expansions)
        .zip(edges.iter_mut())
    {
        for raw in exps {
            match parse_expansion(raw) {
                None => issues.push(MembershipIssue::BadExpansion {
                    group: (*group).to_owned(),
                    expansion: (*raw).to_owned(),
                }),
                Some((mode, target)) => match index.get(target) {
                    None => issues.push(MembershipIssue::UnknownTarget {
                        group: (*group).to_owned(),
                        target: target.to_owned(),
                    }),
                    Some(&t) => list.push((mode, t)),
                },
            }
        }
    }
    edges
}

/// Drops (and reports) every edge inside a strongly connected component,
/// which leaves the graph acyclic.
fn drop_cycle_edges<D>(
    input: &MembershipInput<'_, D>,
    edges: &mut [Vec<(ExpansionMode, u32)>],
    issues: &mut Vec<MembershipIssue>,
) {
    let name_of = |g: u32| input.group_names.get(g as usize).copied().unwrap_or("");
    let scc = strongly_connected_components(edges);
    for ((group, list), component) in input.group_names.iter().zip(edges.iter_mut()).zip(&scc) {
        list.retain(|&(_, t)| {
            let cyclic = scc.get(t as usize) == Some(component);
            if cyclic {
                issues.push(MembershipIssue::Cycle {
                    group: (*group).to_owned(),
                    target: name_of(t).to_owned(),
                });
            }
            !cyclic
        });
    }
}

/// Effective members of every group of an acyclic graph, each group
/// evaluated once, after the groups it expands (post-order).
fn evaluate(mut direct: Vec<Vec<u32>>, edges: &[Vec<(ExpansionMode, u32)>]) -> Vec<Vec<u32>> {
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); edges.len()];
    for g in post_order(edges) {
        let mut set = direct.get_mut(g).map(std::mem::take).unwrap_or_default();
        set.sort_unstable();
        set.dedup();
        let mut excluded: Vec<u32> = Vec::new();
        for &(mode, t) in edges.get(g).map(Vec::as_slice).unwrap_or_default() {
            // Post-order: `t` was evaluated before `g`.
            let Some(other) = members.get(t as usize) else {
                continue;
            };
            match mode {
                ExpansionMode::Include => set = union(&set, other),
                ExpansionMode::Exclude => excluded = union(&excluded, other),
            }
        }
        if let Some(slot) = members.get_mut(g) {
            *slot = difference(&set, &excluded);
        }
    }
    members
}

/// Sorted union of two sorted, deduplicated lists.
fn union(mut a: &[u32], mut b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    while let (&[x, ref rest_a @ ..], &[y, ref rest_b @ ..]) = (a, b) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => {
                out.push(x);
                a = rest_a;
            }
            std::cmp::Ordering::Greater => {
                out.push(y);
                b = rest_b;
            }
            std::cmp::Ordering::Equal => {
                out.push(x);
                a = rest_a;
                b = rest_b;
            }
        }
    }
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

/// The elements of sorted `a` that are not in sorted `b`.
fn difference(a: &[u32], mut b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    for &x in a {
        while let &[y, ref rest @ ..] = b {
            if y >= x {
                break;
            }
            b = rest;
        }
        if b.first() == Some(&x) {
            continue;
        }
        out.push(x);
    }
    out
}

/// Tarjan's bookkeeping for one node.
#[derive(Clone, Copy)]
struct TarjanNode {
    index: u32,
    low: u32,
    on_stack: bool,
    component: u32,
}

impl TarjanNode {
    const UNVISITED: u32 = u32::MAX;

    /// Gives the node the next index and puts it on the stack.
    fn discover(&mut self, next_index: &mut u32) {
        self.index = *next_index;
        self.low = *next_index;
        self.on_stack = true;
        *next_index += 1;
    }
}

/// Tarjan's algorithm, iterative (hostile data may nest deeply).
/// Returns the component id of every node. An edge to a node that does not
/// exist is ignored.
fn strongly_connected_components(edges: &[Vec<(ExpansionMode, u32)>]) -> Vec<u32> {
    let mut nodes = vec![
        TarjanNode {
            index: TarjanNode::UNVISITED,
            low: 0,
            on_stack: false,
            component: TarjanNode::UNVISITED,
        };
        edges.len()
    ];
    let mut stack: Vec<u32> = Vec::new();
    let mut next_index = 0u32;
    let mut next_comp = 0u32;
    // (node, next edge position)
    let mut call: Vec<(u32, usize)> = Vec::new();

    for root in 0..nodes.len() {
        match nodes.get_mut(root) {
            Some(node) if node.index == TarjanNode::UNVISITED => node.discover(&mut next_index),
            _ => continue,
        }
        stack.push(root as u32);
        call.push((root as u32, 0));

        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if let Some(&(_, w)) = edges.get(v as usize).and_then(|out| out.get(*pos)) {
                *pos += 1;
                let Some(&target) = nodes.get(w as usize) else {
                    continue;
                };
                if target.index == TarjanNode::UNVISITED {
                    if let Some(node) = nodes.get_mut(w as usize) {
                        node.discover(&mut next_index);
                        stack.push(w);
                        call.push((w, 0));
                    }
                } else if target.on_stack {
                    if let Some(node) = nodes.get_mut(v as usize) {
                        node.low = node.low.min(target.index);
                    }
                }
                continue;
            }
            call.pop();
            let Some(&node) = nodes.get(v as usize) else {
                continue;
            };
            if let Some(parent) = call.last().and_then(|&(p, _)| nodes.get_mut(p as usize)) {
                parent.low = parent.low.min(node.low);
            }
            if node.low == node.index {
                while let Some(w) = stack.pop() {
                    if let Some(member) = nodes.get_mut(w as usize) {
                        member.on_stack = false;
                        member.component = next_comp;
                    }
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    nodes.iter().map(|node| node.component).collect()
}

/// Marks `v` seen; true if it was not seen before (and exists).
fn first_visit(seen: &mut [bool], v: usize) -> bool {
    match seen.get_mut(v) {
        Some(seen) if !*seen => {
            *seen = true;
            true
        }
        _ => false,
    }
}

/// Post-order of an acyclic graph (children before parents), iterative.
fn post_order(edges: &[Vec<(ExpansionMode, u32)>]) -> Vec<usize> {
    let n = edges.len();
    let mut seen = vec![false; n];
    let mut out = Vec::with_capacity(n);
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if !first_visit(&mut seen, root) {
            continue;
        }
        call.push((root, 0));
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if let Some(&(_, w)) = edges.get(v).and_then(|out| out.get(*pos)) {
                *pos += 1;
                let w = w as usize;
                if first_visit(&mut seen, w) {
                    call.push((w, 0));
                }
                continue;
            }
            call.pop();
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an input from (group, expansions) and (entity, direct groups)
    /// and returns the effective members of each group by name.
    fn run(
        groups: &[(&'static str, &[&'static str])],
        entities: &[&[&'static str]],
    ) -> (HashMap<&'static str, Vec<u32>>, Vec<MembershipIssue>) {
        let input = MembershipInput {
            group_names: groups.iter().map(|g| g.0).collect(),
            group_expansions: groups.iter().map(|g| g.1.to_vec()).collect(),
            entity_direct_groups: entities.iter().map(|e| e.to_vec()).collect(),
        };
        let m = compute(&input);
        let by_name = groups
            .iter()
            .map(|g| g.0)
            .zip(m.members.iter().cloned())
            .collect();
        (by_name, m.issues)
    }

    #[test]
    fn direct_members_only() {
        let (m, issues) = run(&[("a", &[]), ("b", &[])], &[&["a"], &["a", "b"], &[]]);
        assert_eq!(m["a"], vec![0, 1]);
        assert_eq!(m["b"], vec![1]);
        assert!(issues.is_empty());
    }

    #[test]
    fn nested_include_is_transitive() {
        // all INCLUDEs staff INCLUDEs admins.
        let (m, _) = run(
            &[
                ("all", &["INCLUDE:staff"]),
                ("staff", &["INCLUDE:admins"]),
                ("admins", &[]),
            ],
            &[&["admins"], &["staff"], &["all"], &[]],
        );
        assert_eq!(m["admins"], vec![0]);
        assert_eq!(m["staff"], vec![0, 1]);
        assert_eq!(m["all"], vec![0, 1, 2]);
    }

    #[test]
    fn exclusion_wins_over_direct_and_included_membership() {
        // staff INCLUDEs eng, EXCLUDEs contractors. Entity 0 is a direct
        // member of staff and a contractor; entity 1 is in eng and a
        // contractor; entity 2 is in eng only.
        let (m, _) = run(
            &[
                ("staff", &["INCLUDE:eng", "EXCLUDE:contractors"]),
                ("eng", &[]),
                ("contractors", &[]),
            ],
            &[&["staff", "contractors"], &["eng", "contractors"], &["eng"]],
        );
        assert_eq!(m["staff"], vec![2]);
        assert_eq!(m["eng"], vec![1, 2]);
    }

    #[test]
    fn exclusion_uses_effective_members_of_the_excluded_group() {
        // g EXCLUDEs x, x INCLUDEs y (which EXCLUDEs z). Entity 0 is in y
        // and so in x, so out of g. Entity 1 is in y and z, so not in y's
        // effective set, not in x, and stays in g.
        let (m, _) = run(
            &[
                ("g", &["EXCLUDE:x"]),
                ("x", &["INCLUDE:y"]),
                ("y", &["EXCLUDE:z"]),
                ("z", &[]),
            ],
            &[&["g", "y"], &["g", "y", "z"]],
        );
        assert_eq!(m["y"], vec![0]);
        assert_eq!(m["x"], vec![0]);
        assert_eq!(m["g"], vec![1]);
    }

    #[test]
    fn included_groups_own_exclusions_apply_inside_the_inclusion_only() {
        // top INCLUDEs mid; mid EXCLUDEs bad. Entity 0 is in mid and bad but
        // also a direct member of top: it stays in top (top does not exclude bad).
        let (m, _) = run(
            &[
                ("top", &["INCLUDE:mid"]),
                ("mid", &["EXCLUDE:bad"]),
                ("bad", &[]),
            ],
            &[&["top", "mid", "bad"], &["mid", "bad"], &["mid"]],
        );
        assert_eq!(m["mid"], vec![2]);
        assert_eq!(m["top"], vec![0, 2]);
    }

    #[test]
    fn cycles_terminate_and_are_reported() {
        // a <-> b cycle, c INCLUDEs a, and d INCLUDEs itself.
        let (m, issues) = run(
            &[
                ("a", &["INCLUDE:b"]),
                ("b", &["INCLUDE:a"]),
                ("c", &["INCLUDE:a"]),
                ("d", &["INCLUDE:d"]),
            ],
            &[&["a"], &["b"], &["d"]],
        );
        // Cycle edges are ignored: a and b keep their direct members.
        assert_eq!(m["a"], vec![0]);
        assert_eq!(m["b"], vec![1]);
        // The edge c -> a is not on the cycle and still counts.
        assert_eq!(m["c"], vec![0]);
        assert_eq!(m["d"], vec![2]);
        let cycles: Vec<_> = issues
            .iter()
            .filter(|i| matches!(i, MembershipIssue::Cycle { .. }))
            .collect();
        assert_eq!(cycles.len(), 3, "{issues:?}");
    }

    #[test]
    fn large_cycle_with_exclusions_is_fast_and_order_independent() {
        // 2,000 groups in one big ring plus chords: must finish quickly and
        // give the same answer whatever order the groups come in.
        let names: Vec<String> = (0..2000).map(|i| format!("g{i}")).collect();
        let exps: Vec<Vec<String>> = (0..2000)
            .map(|i| {
                vec![
                    format!("INCLUDE:g{}", (i + 1) % 2000),
                    format!("EXCLUDE:g{}", (i * 7) % 2000),
                ]
            })
            .collect();
        let direct: Vec<Vec<&str>> = (0..2000).map(|i| vec![names[i].as_str()]).collect();
        let forward = compute(&MembershipInput {
            group_names: names.iter().map(String::as_str).collect(),
            group_expansions: exps
                .iter()
                .map(|v| v.iter().map(String::as_str).collect())
                .collect(),
            entity_direct_groups: direct.clone(),
        });
        let rev_names: Vec<&str> = names.iter().rev().map(String::as_str).collect();
        let backward = compute(&MembershipInput {
            group_names: rev_names,
            group_expansions: exps
                .iter()
                .rev()
                .map(|v| v.iter().map(String::as_str).collect())
                .collect(),
            entity_direct_groups: direct,
        });
        for i in 0..2000 {
            assert_eq!(forward.members[i], backward.members[1999 - i]);
            assert_eq!(forward.members[i], vec![i as u32]);
        }
    }

    #[test]
    fn unknown_targets_and_bad_expansions_are_ignored() {
        let (m, issues) = run(
            &[(
                "a",
                &[
                    "INCLUDE:ghost",
                    "DROP:a",
                    "garbage",
                    "INCLUDE:",
                    "EXCLUDE:b",
                ],
            )],
            &[&["a", "nosuchgroup"]],
        );
        assert_eq!(m["a"], vec![0]);
        assert_eq!(issues.len(), 5, "{issues:?}");
    }

    #[test]
    fn deep_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let names: Vec<String> = (0..n).map(|i| format!("g{i}")).collect();
        let exps: Vec<Vec<String>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![format!("INCLUDE:g{}", i + 1)]
                } else {
                    vec![]
                }
            })
            .collect();
        let last = names[n - 1].clone();
        let m = compute(&MembershipInput {
            group_names: names.iter().map(String::as_str).collect(),
            group_expansions: exps
                .iter()
                .map(|v| v.iter().map(String::as_str).collect())
                .collect(),
            entity_direct_groups: vec![vec![last.as_str()]],
        });
        assert_eq!(m.members[0], vec![0]);
        assert_eq!(m.groups_of_entities(1)[0].len(), n);
    }

    #[test]
    fn set_operations_agree_with_btreeset() {
        use std::collections::BTreeSet;
        // A small linear congruential generator: reproducible lists of
        // every shape (empty, disjoint, overlapping, one inside the other).
        let mut state = 0x2545_f491_u32;
        let mut next = move |m: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 8) % m
        };
        for _ in 0..2_000 {
            let a: BTreeSet<u32> = (0..next(12)).map(|_| next(30)).collect();
            let b: BTreeSet<u32> = (0..next(12)).map(|_| next(30)).collect();
            let (va, vb): (Vec<u32>, Vec<u32>) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            let want_union: Vec<u32> = a.union(&b).copied().collect();
            let want_difference: Vec<u32> = a.difference(&b).copied().collect();
            assert_eq!(union(&va, &vb), want_union, "{va:?} | {vb:?}");
            assert_eq!(difference(&va, &vb), want_difference, "{va:?} - {vb:?}");
        }
    }

    #[test]
    fn set_operations() {
        assert_eq!(union(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(difference(&[1, 2, 3, 5], &[2, 5, 9]), vec![1, 3]);
        assert_eq!(difference(&[], &[1]), Vec::<u32>::new());
    }
}
