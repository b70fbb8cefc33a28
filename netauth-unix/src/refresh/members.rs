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
pub struct MembershipInput<'a> {
    /// Group names; the index is the group's id in the rest of the input.
    pub group_names: Vec<&'a str>,
    /// Raw `Group.Expansions` per group (same indexing as `group_names`).
    pub group_expansions: Vec<Vec<&'a str>>,
    /// Per entity (index = entity id), the group names it is a direct member of.
    pub entity_direct_groups: Vec<Vec<&'a str>>,
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
pub fn compute(input: &MembershipInput<'_>) -> Memberships {
    let n = input.group_names.len();
    let mut issues = Vec::new();
    // When a name is duplicated (the caller should have prevented it), the
    // first index wins deterministically.
    let mut index: HashMap<&str, u32> = HashMap::with_capacity(n);
    for (i, name) in input.group_names.iter().enumerate() {
        index.entry(*name).or_insert(i as u32);
    }

    // Direct members per group.
    let mut direct: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (e, groups) in input.entity_direct_groups.iter().enumerate() {
        for g in groups {
            if let Some(&gi) = index.get(g) {
                direct[gi as usize].push(e as u32);
            }
        }
    }

    // Expansion edges.
    let mut edges: Vec<Vec<(ExpansionMode, u32)>> = vec![Vec::new(); n];
    for (g, exps) in input.group_expansions.iter().enumerate() {
        for raw in exps {
            match parse_expansion(raw) {
                None => issues.push(MembershipIssue::BadExpansion {
                    group: input.group_names[g].to_owned(),
                    expansion: (*raw).to_owned(),
                }),
                Some((mode, target)) => match index.get(target) {
                    None => issues.push(MembershipIssue::UnknownTarget {
                        group: input.group_names[g].to_owned(),
                        target: target.to_owned(),
                    }),
                    Some(&t) => edges[g].push((mode, t)),
                },
            }
        }
    }

    // Drop every edge inside a strongly connected component.
    let scc = strongly_connected_components(&edges);
    for (g, list) in edges.iter_mut().enumerate() {
        list.retain(|&(_, t)| {
            let cyclic = scc[g] == scc[t as usize];
            if cyclic {
                issues.push(MembershipIssue::Cycle {
                    group: input.group_names[g].to_owned(),
                    target: input.group_names[t as usize].to_owned(),
                });
            }
            !cyclic
        });
    }

    // The graph is now acyclic: evaluate in post-order.
    let order = post_order(&edges);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); n];
    for g in order {
        let mut set = std::mem::take(&mut direct[g]);
        set.sort_unstable();
        set.dedup();
        let mut excluded: Vec<u32> = Vec::new();
        for &(mode, t) in &edges[g] {
            let other = &members[t as usize];
            match mode {
                ExpansionMode::Include => set = union(&set, other),
                ExpansionMode::Exclude => excluded = union(&excluded, other),
            }
        }
        members[g] = difference(&set, &excluded);
    }
    Memberships { members, issues }
}

fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// Tarjan's algorithm, iterative (hostile data may nest deeply).
/// Returns the component id of every node.
fn strongly_connected_components(edges: &[Vec<(ExpansionMode, u32)>]) -> Vec<u32> {
    const UNVISITED: u32 = u32::MAX;
    let n = edges.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![UNVISITED; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut next_index = 0u32;
    let mut next_comp = 0u32;
    // (node, next edge position)
    let mut call: Vec<(u32, usize)> = Vec::new();

    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        call.push((root as u32, 0));
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root as u32);
        on_stack[root] = true;

        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            let v = v as usize;
            if let Some(&(_, w)) = edges[v].get(*pos) {
                *pos += 1;
                let w = w as usize;
                if index[w] == UNVISITED {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w as u32);
                    on_stack[w] = true;
                    call.push((w as u32, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                let p = parent as usize;
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp[w as usize] = next_comp;
                    if w as usize == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    comp
}

/// Post-order of an acyclic graph (children before parents), iterative.
fn post_order(edges: &[Vec<(ExpansionMode, u32)>]) -> Vec<usize> {
    let n = edges.len();
    let mut seen = vec![false; n];
    let mut out = Vec::with_capacity(n);
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        call.push((root, 0));
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if let Some(&(_, w)) = edges[v].get(*pos) {
                *pos += 1;
                let w = w as usize;
                if !seen[w] {
                    seen[w] = true;
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
    fn set_operations() {
        assert_eq!(union(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(difference(&[1, 2, 3, 5], &[2, 5, 9]), vec![1, 3]);
        assert_eq!(difference(&[], &[1]), Vec::<u32>::new());
    }
}
