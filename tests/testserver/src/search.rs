//! A subset of the query-string syntax NetAuth's search index (bleve)
//! accepts: whitespace-separated clauses, each optionally prefixed by `+`
//! (must) or `-` (must not), plain clauses are "should". A clause is
//! `value` (any text field) or `Field:value`, where value is a word, a
//! `"quoted phrase"`, a wildcard (`u0*`, `?`), or for numeric fields a
//! range `>=N`, `>N`, `<=N`, `<N`. A lone `*` matches everything.
//!
//! Text is split into lower-cased words before matching, as bleve's
//! standard analyzer does. With at least one must clause the should
//! clauses are optional; without, at least one should clause must match;
//! only must-not clauses match everything they do not exclude.

/// One searchable document: (field name, raw value) pairs plus the number.
pub(crate) struct Doc<'a> {
    pub fields: Vec<(&'static str, &'a str)>,
    pub number: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occur {
    Must,
    Should,
    MustNot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeOp {
    Ge,
    Gt,
    Le,
    Lt,
}

/// One element of a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pat {
    AnyRun,
    AnyOne,
    Lit(char),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    All,
    /// Any of the analyzed words; `number` when the value is an integer.
    Term {
        field: Option<String>,
        words: Vec<String>,
        number: Option<i64>,
    },
    Phrase {
        field: Option<String>,
        words: Vec<String>,
    },
    Wildcard {
        field: Option<String>,
        pattern: Vec<Pat>,
    },
    Range {
        field: Option<String>,
        op: RangeOp,
        bound: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    clauses: Vec<(Occur, Matcher)>,
}

const NUMBER_FIELD: &str = "Number";

/// Splits text into lower-cased words (an approximation of Unicode word
/// segmentation: letters, digits and `_` form words; `.`, `'` and `:`
/// join two alphanumerics, as in `alice.smith`).
pub(crate) fn analyze(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let joins = matches!(c, '.' | '\'' | ':')
            && cur.chars().last().is_some_and(char::is_alphanumeric)
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || c == '_' || joins {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur).to_lowercase());
        }
    }
    if !cur.is_empty() {
        out.push(cur.to_lowercase());
    }
    out
}

fn glob(pattern: &[Pat], text: &[char]) -> bool {
    // Iterative matcher with backtracking to the last `*`.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Pat::AnyRun) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Pat::AnyOne) => {
                p += 1;
                t += 1;
            }
            Some(Pat::Lit(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == Pat::AnyRun)
}

/// A wildcard value as a pattern; escaped characters are literals.
/// Wildcards are not analyzed; they are lower-cased so they meet the
/// lower-cased words of the index.
fn wildcard_pattern(value: &str) -> Vec<Pat> {
    let mut out = Vec::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.extend(n.to_lowercase().map(Pat::Lit));
                }
            }
            '*' => out.push(Pat::AnyRun),
            '?' => out.push(Pat::AnyOne),
            c => out.extend(c.to_lowercase().map(Pat::Lit)),
        }
    }
    out
}

/// Splits the expression into clauses at unquoted, unescaped whitespace.
fn split_clauses(expr: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err("dangling escape at end of expression".into()),
                }
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            c if c.is_whitespace() && !in_quotes => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated quote".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Index of the first unescaped, unquoted `:`.
fn field_separator(clause: &str) -> Option<usize> {
    let mut escaped = false;
    let mut in_quotes = false;
    for (i, c) in clause.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn has_unescaped_wildcard(s: &str) -> bool {
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '*' || c == '?' {
            return true;
        }
    }
    false
}

fn parse_value(field: Option<String>, value: &str) -> Result<Matcher, String> {
    if value.is_empty() {
        return Err("empty value in clause".into());
    }
    if value == "*" && field.is_none() {
        return Ok(Matcher::All);
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let words = analyze(&unescape(&value[1..value.len() - 1]));
        return Ok(Matcher::Phrase { field, words });
    }
    for (prefix, op) in [
        (">=", RangeOp::Ge),
        ("<=", RangeOp::Le),
        (">", RangeOp::Gt),
        ("<", RangeOp::Lt),
    ] {
        if let Some(rest) = value.strip_prefix(prefix) {
            let rest = rest.trim_matches('"');
            let bound: f64 = rest
                .parse()
                .map_err(|_| format!("range bound {rest:?} is not a number"))?;
            return Ok(Matcher::Range { field, op, bound });
        }
    }
    if has_unescaped_wildcard(value) {
        return Ok(Matcher::Wildcard {
            field,
            pattern: wildcard_pattern(value),
        });
    }
    let raw = unescape(value);
    Ok(Matcher::Term {
        words: analyze(&raw),
        number: raw.parse().ok(),
        field,
    })
}

impl Query {
    pub(crate) fn parse(expr: &str) -> Result<Query, String> {
        let clauses = split_clauses(expr)?;
        if clauses.is_empty() {
            return Err("empty search expression".into());
        }
        let mut out = Vec::with_capacity(clauses.len());
        for clause in clauses {
            let (occur, body) = match clause.strip_prefix('+') {
                Some(rest) => (Occur::Must, rest),
                None => match clause.strip_prefix('-') {
                    Some(rest) => (Occur::MustNot, rest),
                    None => (Occur::Should, clause.as_str()),
                },
            };
            let matcher = match field_separator(body) {
                Some(i) => {
                    let field = unescape(&body[..i]);
                    if field.is_empty() {
                        return Err(format!("empty field name in {clause:?}"));
                    }
                    parse_value(Some(field), &body[i + 1..])?
                }
                None => parse_value(None, body)?,
            };
            out.push((occur, matcher));
        }
        Ok(Query { clauses: out })
    }

    pub(crate) fn matches(&self, doc: &Doc<'_>) -> bool {
        let mut has_must = false;
        let mut has_should = false;
        let mut should_hit = false;
        for (occur, m) in &self.clauses {
            match occur {
                Occur::Must => {
                    has_must = true;
                    if !m.matches(doc) {
                        return false;
                    }
                }
                Occur::MustNot => {
                    if m.matches(doc) {
                        return false;
                    }
                }
                Occur::Should => {
                    has_should = true;
                    if !should_hit && m.matches(doc) {
                        should_hit = true;
                    }
                }
            }
        }
        has_must || !has_should || should_hit
    }
}

fn field_values<'d>(doc: &'d Doc<'_>, field: &'d Option<String>) -> impl Iterator<Item = &'d str> {
    doc.fields
        .iter()
        .filter(move |(name, _)| field.as_deref().is_none_or(|f| f == *name))
        .map(|(_, v)| *v)
}

fn wants_number(field: &Option<String>) -> bool {
    field.as_deref().is_none_or(|f| f == NUMBER_FIELD)
}

impl Matcher {
    fn matches(&self, doc: &Doc<'_>) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Term {
                field,
                words,
                number,
            } => {
                if let (Some(n), Some(d)) = (number, doc.number) {
                    if wants_number(field) && *n == i64::from(d) {
                        return true;
                    }
                }
                field_values(doc, field).any(|v| analyze(v).iter().any(|w| words.contains(w)))
            }
            Matcher::Phrase { field, words } => {
                if words.is_empty() {
                    return false;
                }
                field_values(doc, field).any(|v| {
                    let have = analyze(v);
                    have.windows(words.len()).any(|w| w == words.as_slice())
                })
            }
            Matcher::Wildcard { field, pattern } => {
                if field.as_deref() == Some(NUMBER_FIELD) {
                    let digits: Vec<char> = doc
                        .number
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                        .chars()
                        .collect();
                    return doc.number.is_some() && glob(pattern, &digits);
                }
                field_values(doc, field).any(|v| {
                    analyze(v).iter().any(|w| {
                        let w: Vec<char> = w.chars().collect();
                        glob(pattern, &w)
                    })
                })
            }
            Matcher::Range { field, op, bound } => {
                if field.as_deref() != Some(NUMBER_FIELD) {
                    return false;
                }
                let Some(n) = doc.number else { return false };
                let n = f64::from(n);
                match op {
                    RangeOp::Ge => n >= *bound,
                    RangeOp::Gt => n > *bound,
                    RangeOp::Le => n <= *bound,
                    RangeOp::Lt => n < *bound,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(id: &'a str, number: i32, extra: &[(&'static str, &'a str)]) -> Doc<'a> {
        let mut fields = vec![("ID", id)];
        fields.extend_from_slice(extra);
        Doc {
            fields,
            number: Some(number),
        }
    }

    fn m(q: &str, d: &Doc<'_>) -> bool {
        Query::parse(q).unwrap().matches(d)
    }

    #[test]
    fn analyzer_splits_words() {
        assert_eq!(analyze("Alice Smith"), vec!["alice", "smith"]);
        assert_eq!(analyze("/home/alice"), vec!["home", "alice"]);
        assert_eq!(analyze("alice.smith"), vec!["alice.smith"]);
        assert_eq!(analyze("dev-team"), vec!["dev", "team"]);
        assert_eq!(analyze("u_0001"), vec!["u_0001"]);
        assert!(analyze("  ").is_empty());
    }

    #[test]
    fn empty_and_malformed_expressions_fail() {
        assert!(Query::parse("").is_err());
        assert!(Query::parse("   ").is_err());
        assert!(Query::parse("Number:>=abc").is_err());
        assert!(Query::parse("ID:").is_err());
        assert!(Query::parse(":x").is_err());
        assert!(Query::parse("\"open").is_err());
    }

    #[test]
    fn fields_terms_wildcards_ranges() {
        let d = doc(
            "u0042",
            42,
            &[
                ("meta.DisplayName", "Alice Smith"),
                ("meta.Groups", "staff"),
            ],
        );
        assert!(m("*", &d));
        assert!(m("ID:u0042", &d));
        assert!(m("ID:U0042", &d), "terms are analyzed (lower-cased)");
        assert!(!m("ID:u004", &d));
        assert!(m("ID:u0*", &d));
        assert!(m("ID:u00?2", &d));
        assert!(!m("ID:u1*", &d));
        assert!(m("Number:42", &d));
        assert!(m("Number:>=42", &d));
        assert!(!m("Number:>42", &d));
        assert!(m("Number:<43", &d));
        assert!(m("Number:<=42", &d));
        assert!(!m("Number:<42", &d));
        assert!(m("meta.DisplayName:smith", &d));
        assert!(m("meta.DisplayName:\"alice smith\"", &d));
        assert!(!m("meta.DisplayName:\"smith alice\"", &d));
        assert!(m("meta.Groups:staff", &d));
        assert!(!m("meta.Groups:admins", &d));
        assert!(m("smith", &d), "bare words search every field");
        assert!(m("42", &d), "bare numbers meet the number");
        assert!(!m("Unknown:u0042", &d));
        assert!(!m("ID:>=0", &d), "ranges only on numeric fields");
    }

    #[test]
    fn boolean_combination() {
        let d = doc("u0042", 42, &[]);
        assert!(m("+Number:>=10 +Number:<50", &d));
        assert!(!m("+Number:>=10 +Number:<40", &d));
        assert!(m("ID:nobody ID:u0042", &d), "one should suffices");
        assert!(!m("ID:nobody ID:other", &d));
        assert!(m("+ID:u0042 ID:nobody", &d), "should optional beside must");
        assert!(!m("+ID:u0042 -Number:42", &d));
        assert!(m("-ID:other", &d), "only must-not: all but excluded");
        assert!(!m("-ID:u0042", &d));
        assert!(!m("-*", &d));
    }

    #[test]
    fn escapes() {
        let d = doc("a*b", 1, &[]);
        // An escaped star is a literal, analyzed away like other punctuation.
        assert!(m("ID:a\\*b", &d));
        let q = Query::parse("ID:a\\*b").unwrap();
        assert!(matches!(q.clauses[0].1, Matcher::Term { .. }));
    }
}
