//! Envoy's CEL foreign functions (`expr_create`, `expr_evaluate`, `expr_delete`), for the one
//! expression shape a proxy-wasm module needs to read several properties in one call: a list of
//! guarded attribute reads,
//!
//! ```text
//! [(has(response.code) ? response.code : -1), (has(xds.route_name) ? xds.route_name : ''), …]
//! ```
//!
//! Envoy compiles any CEL; this host compiles only that shape and refuses the rest with
//! `BadArgument`, as Envoy refuses an expression it cannot parse. Evaluation reads the same
//! property store as `proxy_get_property` (the stream's, then the root's) and serialises the list
//! as Envoy 1.40 does: like a header map, each item in the key position with an empty value;
//! integers and durations as 8 little-endian bytes, strings as their bytes.

use std::collections::BTreeMap;

/// The absent-value fallback of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fallback {
    /// An integer literal, serialised as 8 little-endian bytes.
    Int(i64),
    /// A string literal.
    Str(String),
    /// `duration('…s')`, serialised as its nanoseconds.
    DurationNs(i64),
}

/// One list item: the attribute path (`["response", "code"]`) and its fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    path: Vec<String>,
    fallback: Fallback,
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    items: Vec<Item>,
}

/// Compiled expressions by token, as Envoy keeps them per root context.
#[derive(Debug, Default)]
pub struct Expressions {
    next: u32,
    by_token: BTreeMap<u32, Expr>,
    /// `expr_evaluate` calls so far (tests assert the one-call path is taken).
    pub evaluations: u64,
}

impl Expressions {
    /// Compiles `source`; `None` when it is not the supported shape.
    pub fn create(&mut self, source: &str) -> Option<u32> {
        let expr = parse(source)?;
        let token = self.next;
        self.next = self.next.wrapping_add(1);
        self.by_token.insert(token, expr);
        Some(token)
    }

    /// The expression behind `token`.
    pub fn get(&self, token: u32) -> Option<&Expr> {
        self.by_token.get(&token)
    }

    /// Forgets `token`.
    pub fn delete(&mut self, token: u32) {
        self.by_token.remove(&token);
    }
}

impl Expr {
    /// Evaluates against `lookup` (a property path to its bytes), serialised as Envoy does.
    pub fn evaluate(&self, lookup: impl Fn(&[String]) -> Option<Vec<u8>>) -> Vec<u8> {
        let values: Vec<(Vec<u8>, Vec<u8>)> = self
            .items
            .iter()
            .map(|item| {
                let v = lookup(&item.path).unwrap_or_else(|| match &item.fallback {
                    Fallback::Int(i) | Fallback::DurationNs(i) => i.to_le_bytes().to_vec(),
                    Fallback::Str(s) => s.as_bytes().to_vec(),
                });
                (v, Vec::new())
            })
            .collect();
        crate::guest::serialize_pairs(&values)
    }
}

/// Parses `[(has(P) ? P : F), …]`.
fn parse(source: &str) -> Option<Expr> {
    let inner = source.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut items = Vec::new();
    for raw in split_top_level(inner) {
        items.push(parse_item(raw.trim())?);
    }
    (!items.is_empty()).then_some(Expr { items })
}

/// Splits at commas outside parentheses and quotes.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let mut out = Vec::new();
    for (i, ch) in s.char_indices() {
        match ch {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_item(s: &str) -> Option<Item> {
    let s = s.strip_prefix('(')?.strip_suffix(')')?.trim();
    let rest = s.strip_prefix("has(")?;
    let (guard, rest) = rest.split_once(')')?;
    let (then, fallback) = rest.trim().strip_prefix('?')?.split_once(':')?;
    let path = attribute(guard)?;
    if attribute(then.trim())? != path {
        return None;
    }
    Some(Item {
        path,
        fallback: literal(fallback.trim())?,
    })
}

/// `a.b.c` → `["a", "b", "c"]`.
fn attribute(s: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = s.split('.').map(str::to_string).collect();
    let ok = parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    ok.then_some(parts)
}

fn literal(s: &str) -> Option<Fallback> {
    if let Some(d) = s
        .strip_prefix("duration('")
        .and_then(|d| d.strip_suffix("s')"))
    {
        let secs: i64 = d.parse().ok()?;
        return Some(Fallback::DurationNs(secs.checked_mul(1_000_000_000)?));
    }
    if let Some(text) = s.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Some(Fallback::Str(text.to_string()));
    }
    s.parse().ok().map(Fallback::Int)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn parses_the_guarded_list_and_evaluates_with_fallbacks() {
        let mut exprs = Expressions::default();
        let src = "[(has(response.code) ? response.code : -1), \
                   (has(request.duration) ? request.duration : duration('-1s')), \
                   (has(xds.route_name) ? xds.route_name : '')]";
        let token = exprs.create(src).unwrap();
        let out = exprs
            .get(token)
            .unwrap()
            .evaluate(|p| (p == ["response", "code"]).then(|| 200i64.to_le_bytes().to_vec()));
        let want = crate::guest::serialize_pairs(&[
            (200i64.to_le_bytes().to_vec(), vec![]),
            ((-1_000_000_000i64).to_le_bytes().to_vec(), vec![]),
            (vec![], vec![]),
        ]);
        assert_eq!(out, want);
        exprs.delete(token);
        assert!(exprs.get(token).is_none());
    }

    #[test]
    fn refuses_other_shapes() {
        let mut exprs = Expressions::default();
        for bad in [
            "",
            "[]",
            "response.code",
            "[(has(response.code) ? request.code : -1)]",
            "[(has(response.code) ? response.code : oops)]",
            "[response.code + 1]",
        ] {
            assert!(exprs.create(bad).is_none(), "{bad:?}");
        }
    }
}
