//! Native Envoy configuration that keeps requests no rule can match away from the Wasm VM.
//!
//! adtap's rules decide which requests become events, inside the VM. Envoy can make a cheaper,
//! coarser decision first, natively, from the same rules:
//! - as the Wasm **access logger**, the access log's `filter` (an
//!   `envoy.config.accesslog.v3.AccessLogFilter`, [`access_log_filter`]) runs before the VM is
//!   entered: a request it rejects never reaches `proxy_on_log`;
//! - as the Wasm **HTTP filter**, the entry is Envoy's composite filter
//!   (`envoy.filters.http.composite`) wrapped in an
//!   `envoy.extensions.common.matching.v3.ExtensionWithMatcher` whose `xds_matcher`
//!   ([`composite_matcher`]) runs an `ExecuteFilterAction` holding the Wasm filter when a rule
//!   could match: the Wasm filter is created for those requests only, and a request that matches
//!   nothing makes no VM entry at all (no context, no `proxy_on_log`). Wrapping the Wasm filter
//!   itself with `SkipFilter` ([`skip_matcher`]) would not do that: Envoy still hands a skipped
//!   filter the access-log and destroy callbacks (see `envoy/README.md`).
//!
//! Which rules each deployment captures is decided by one function, [`captures`] (and
//! [`rules_for`] over a configuration), shared with the capture path.
//!
//! The native matchers are a **superset** of the rules: they never keep out a request that a
//! rule of the deployment would capture, and they may let through some that no rule captures
//! (the VM then counts it as unmatched). The rules stay the source of truth. How each part of
//! a rule is translated (`:path`, `:authority` and `:method` as Envoy's header map has them,
//! which is what the VM reads too):
//! - `path.exact P`: `:path` carries the query string, so `:path` equals `P` or starts with
//!   `P?`;
//! - `path.prefix P`: `:path` starts with `P` (a prefix of the path without query is a prefix of
//!   `:path`, and the converse holds as long as `P` has no `?`);
//! - a path with `?` or `#` (which validation refuses, but a hand-built [`Config`] may carry):
//!   `:path` starts with `P` cut before its first `?` or `#`, a coarser superset (the VM cuts the
//!   query at the first `?`, so such a rule can match less than that, never more);
//! - `host H`: `:authority` equals `H` or starts with `H:` (a port), ignoring ASCII case; a
//!   bracketed IPv6 host `[…]` only needs `:authority` to start with it, as the VM takes
//!   everything up to the `]` as the host;
//! - `method M`: `:method` equals `M`.
//!
//! The parts of a rule are AND-ed, the rules OR-ed (first match wins in the VM, but for a
//! superset the union is what counts). Envoy's list matchers need two entries or more, so
//! single-entry lists collapse to their entry. A deployment without rules gets a filter that
//! matches nothing (the logger logs nothing; the Wasm HTTP filter is never created).

use crate::config::{Config, HttpFilterRules, PathMatch, Rule};
use serde_json::{json, Value};

/// Where the module runs in Envoy; decides which rules it captures (see [`captures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// `envoy.access_loggers.wasm`: one `proxy_on_log` per request, no request body, so it
    /// captures only the rules without `capture_body`.
    AccessLogger,
    /// `envoy.filters.http.wasm`: every rule with `http_filter_rules: all` (the default), only the
    /// rules with `capture_body` with `http_filter_rules: body_only` (an access logger with the
    /// same configuration takes the others).
    HttpFilter,
}

/// Whether `deployment` captures the requests `rule` matches, under `cfg`'s
/// `http_filter_rules`.
pub fn captures(cfg: &Config, deployment: Deployment, rule: &Rule) -> bool {
    match deployment {
        Deployment::AccessLogger => !rule.capture_body,
        Deployment::HttpFilter => match cfg.http_filter_rules {
            HttpFilterRules::All => true,
            HttpFilterRules::BodyOnly => rule.capture_body,
        },
    }
}

/// The rules `deployment` captures, in configuration order ([`captures`] over `cfg.rules`).
///
/// Whether the capture path picks the first match among all rules and then keeps it only if
/// [`captures`] says so, or picks the first match among these rules, the requests captured are
/// within the union of these rules' matches, which is what the native matchers cover.
pub fn rules_for(cfg: &Config, deployment: Deployment) -> impl Iterator<Item = &Rule> {
    cfg.rules
        .iter()
        .filter(move |r| captures(cfg, deployment, r))
}

/// The access log `filter` (`envoy.config.accesslog.v3.AccessLogFilter`) of the Wasm access
/// logger: it passes every request that a rule of [`Deployment::AccessLogger`] could match.
pub fn access_log_filter(cfg: &Config) -> Value {
    deployment_cond(cfg, Deployment::AccessLogger).access_log_filter()
}

/// The whole `access_log` list entry of an HTTP connection manager: the Wasm access logger
/// ([`wasm_access_log`]) running the module at `wasm_filename` with `plugin_config_json` (adtap's
/// configuration, as validated), behind [`access_log_filter`].
pub fn access_log_entry(cfg: &Config, plugin_config_json: &str, wasm_filename: &str) -> Value {
    let mut entry = wasm_access_log(plugin_config_json, wasm_filename);
    if let Some(obj) = entry.as_object_mut() {
        obj.insert("filter".into(), access_log_filter(cfg));
    }
    entry
}

/// The Wasm access logger as an `access_log` list entry without a filter
/// (`envoy.access_loggers.wasm`, `WasmAccessLog`): the module at `wasm_filename` with
/// `plugin_config_json`, `failure_policy: FAIL_OPEN`. Envoy runs it for every request; what
/// adtap deploys is [`access_log_entry`], which adds the filter.
pub fn wasm_access_log(plugin_config_json: &str, wasm_filename: &str) -> Value {
    json!({
        "name": "envoy.access_loggers.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog",
            "config": plugin_config(plugin_config_json, wasm_filename),
        }
    })
}

/// The `xds_matcher` (`xds.type.matcher.v3.Matcher`) of the `ExtensionWithMatcher` around the
/// composite filter: one matcher whose predicate is "a rule of [`Deployment::HttpFilter`] can
/// match" and whose action is an `ExecuteFilterAction` holding `filter` (a
/// `TypedExtensionConfig` of an HTTP filter, such as [`wasm_http_filter`]). A request no rule can
/// match finds no action, so the composite filter creates nothing for it. It always has a
/// predicate, even when every request or none may match.
pub fn composite_matcher(cfg: &Config, filter: Value) -> Value {
    let may_match = deployment_cond(cfg, Deployment::HttpFilter);
    json!({
        "matcher_list": {
            "matchers": [{
                "predicate": may_match.matcher_predicate(),
                "on_match": {
                    "action": {
                        "name": "adtap",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
                            "typed_config": filter,
                        }
                    }
                }
            }]
        }
    })
}

/// An `http_filters` list entry named `adtap` that runs `filter` (a `TypedExtensionConfig`) only
/// for the requests a rule of [`Deployment::HttpFilter`] can match: Envoy's composite filter
/// wrapped in an `ExtensionWithMatcher` with [`composite_matcher`].
pub fn composite_filter_entry(cfg: &Config, filter: Value) -> Value {
    json!({
        "name": "adtap",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": {
                "name": "envoy.filters.http.composite",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"
                }
            },
            "xds_matcher": composite_matcher(cfg, filter),
        }
    })
}

/// The Wasm HTTP filter as a `TypedExtensionConfig` (`envoy.filters.http.wasm`): the module at
/// `wasm_filename` with `plugin_config_json`, `failure_policy: FAIL_OPEN`.
pub fn wasm_http_filter(plugin_config_json: &str, wasm_filename: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": plugin_config(plugin_config_json, wasm_filename),
        }
    })
}

/// An `http_filters` list entry: [`composite_filter_entry`] with the Wasm HTTP filter
/// ([`wasm_http_filter`]) as its action, so that the Wasm filter exists only for requests a rule
/// can match. Goes ahead of the router.
pub fn http_filter_entry(cfg: &Config, plugin_config_json: &str, wasm_filename: &str) -> Value {
    composite_filter_entry(cfg, wasm_http_filter(plugin_config_json, wasm_filename))
}

/// The older form, **not** used by [`http_filter_entry`]: an `xds_matcher` for an
/// `ExtensionWithMatcher` around the Wasm filter itself, whose predicate is "no rule of
/// [`Deployment::HttpFilter`] can match" and whose action is `SkipFilter`. Envoy 1.40 still
/// creates the VM context of a skipped Wasm filter and calls its `proxy_on_log`, `proxy_on_done`
/// and `proxy_on_delete` (`envoy/README.md`); only the header and body callbacks are saved. Kept
/// for measurements that compare the two forms.
pub fn skip_matcher(cfg: &Config) -> Value {
    let may_match = deployment_cond(cfg, Deployment::HttpFilter);
    json!({
        "matcher_list": {
            "matchers": [{
                "predicate": may_match.negated_matcher_predicate(),
                "on_match": {
                    "action": {
                        "name": "skip",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
                        }
                    }
                }
            }]
        }
    })
}

/// An `http_filters` list entry named `adtap` in the older form (see [`skip_matcher`]): `filter`
/// (a `TypedExtensionConfig`, such as [`wasm_http_filter`]) wrapped in an `ExtensionWithMatcher`
/// that skips it when no rule of [`Deployment::HttpFilter`] can match.
pub fn skip_filter_entry(cfg: &Config, filter: Value) -> Value {
    json!({
        "name": "adtap",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": filter,
            "xds_matcher": skip_matcher(cfg),
        }
    })
}

/// The `envoy.extensions.wasm.v3.PluginConfig` both deployments share. The same `vm_id`, runtime
/// and code let a logger and a filter in one Envoy share each worker's VM.
fn plugin_config(plugin_config_json: &str, wasm_filename: &str) -> Value {
    json!({
        "name": "adtap",
        "root_id": "adtap",
        // Analytics must never take the ad path down: a failed VM lets requests pass.
        "failure_policy": "FAIL_OPEN",
        "vm_config": {
            "vm_id": "adtap",
            "runtime": "envoy.wasm.runtime.v8",
            "code": { "local": { "filename": wasm_filename } }
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": plugin_config_json,
        }
    })
}

/// How a header value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Exact,
    Prefix,
}

/// A condition on the request headers, rendered into either of Envoy's two matcher languages.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    /// Every request.
    Always,
    /// No request.
    Never,
    /// A header (pseudo-header) compared with a value.
    Header {
        name: &'static str,
        compare: Compare,
        value: String,
        ignore_case: bool,
    },
    /// All of them (two or more).
    And(Vec<Cond>),
    /// Any of them (two or more).
    Or(Vec<Cond>),
}

impl Cond {
    fn header(name: &'static str, compare: Compare, value: String, ignore_case: bool) -> Cond {
        Cond::Header {
            name,
            compare,
            value,
            ignore_case,
        }
    }

    /// All of `parts`, simplified: `Always` parts dropped, any `Never` wins, one part stands
    /// alone.
    fn all(parts: Vec<Cond>) -> Cond {
        Cond::combine(parts, true)
    }

    /// Any of `parts`, simplified: `Never` parts dropped, any `Always` wins, one part stands
    /// alone.
    fn any(parts: Vec<Cond>) -> Cond {
        Cond::combine(parts, false)
    }

    /// `all` (`and`) or `any`: the two are duals, one's identity the other's absorbing value.
    fn combine(parts: Vec<Cond>, and: bool) -> Cond {
        let (identity, absorbing) = if and {
            (Cond::Always, Cond::Never)
        } else {
            (Cond::Never, Cond::Always)
        };
        let mut kept = Vec::new();
        for p in parts {
            match (p, and) {
                (Cond::Always, true) | (Cond::Never, false) => {}
                (Cond::Never, true) | (Cond::Always, false) => return absorbing,
                (p, _) => kept.push(p),
            }
        }
        match kept.len() {
            0 => identity,
            1 => kept.pop().unwrap_or(identity),
            _ if and => Cond::And(kept),
            _ => Cond::Or(kept),
        }
    }

    /// As an `envoy.config.accesslog.v3.AccessLogFilter`.
    fn access_log_filter(&self) -> Value {
        match self {
            // `:method` is present or absent: a tautology and a contradiction that hold whatever
            // the request carries.
            Cond::Always => {
                json!({"or_filter": {"filters": [method_present(true), method_present(false)]}})
            }
            Cond::Never => {
                json!({"and_filter": {"filters": [method_present(true), method_present(false)]}})
            }
            Cond::Header {
                name,
                compare,
                value,
                ignore_case,
            } => json!({
                "header_filter": {
                    "header": {
                        "name": name,
                        "string_match": string_match(*compare, value, *ignore_case),
                    }
                }
            }),
            Cond::And(parts) => json!({
                "and_filter": {"filters": parts.iter().map(Cond::access_log_filter).collect::<Vec<_>>()}
            }),
            Cond::Or(parts) => json!({
                "or_filter": {"filters": parts.iter().map(Cond::access_log_filter).collect::<Vec<_>>()}
            }),
        }
    }

    /// As an `xds.type.matcher.v3.Matcher.MatcherList.Predicate` on request headers that holds
    /// when `self` does not.
    fn negated_matcher_predicate(&self) -> Value {
        match self {
            Cond::Always => Cond::Never.matcher_predicate(),
            Cond::Never => Cond::Always.matcher_predicate(),
            c => json!({"not_matcher": c.matcher_predicate()}),
        }
    }

    /// As an `xds.type.matcher.v3.Matcher.MatcherList.Predicate` on request headers.
    fn matcher_predicate(&self) -> Value {
        match self {
            // `:method` equals "" or it does not (an absent header gives the single predicate
            // false, so its negation true): holds for every request, whatever it carries.
            Cond::Always => json!({"or_matcher": {"predicate": [
                method_is_empty(),
                {"not_matcher": method_is_empty()},
            ]}}),
            Cond::Never => json!({"and_matcher": {"predicate": [
                method_is_empty(),
                {"not_matcher": method_is_empty()},
            ]}}),
            Cond::Header {
                name,
                compare,
                value,
                ignore_case,
            } => json!({
                "single_predicate": {
                    "input": request_header_input(name),
                    "value_match": string_match(*compare, value, *ignore_case),
                }
            }),
            Cond::And(parts) => json!({
                "and_matcher": {"predicate": parts.iter().map(Cond::matcher_predicate).collect::<Vec<_>>()}
            }),
            Cond::Or(parts) => json!({
                "or_matcher": {"predicate": parts.iter().map(Cond::matcher_predicate).collect::<Vec<_>>()}
            }),
        }
    }
}

/// A `StringMatcher` (Envoy's and xds's have the same fields for these).
fn string_match(compare: Compare, value: &str, ignore_case: bool) -> Value {
    let key = match compare {
        Compare::Exact => "exact",
        Compare::Prefix => "prefix",
    };
    let mut m = serde_json::Map::new();
    m.insert(key.to_string(), Value::String(value.to_string()));
    if ignore_case {
        m.insert("ignore_case".to_string(), Value::Bool(true));
    }
    Value::Object(m)
}

/// An access log `header_filter` on whether `:method` is present (`true`) or absent (`false`).
fn method_present(present: bool) -> Value {
    json!({"header_filter": {"header": {"name": ":method", "present_match": present}}})
}

/// A single predicate "`:method` equals the empty string".
fn method_is_empty() -> Value {
    json!({"single_predicate": {
        "input": request_header_input(":method"),
        "value_match": {"exact": ""},
    }})
}

/// The `HttpRequestHeaderMatchInput` for `header`.
fn request_header_input(header: &str) -> Value {
    json!({
        "name": "request-header",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
            "header_name": header,
        }
    })
}

/// Any rule of `deployment` could match.
fn deployment_cond(cfg: &Config, deployment: Deployment) -> Cond {
    Cond::any(rules_for(cfg, deployment).map(rule_cond).collect())
}

/// A superset of the requests `rule` matches (see the module documentation).
fn rule_cond(rule: &Rule) -> Cond {
    let method = match &rule.method {
        Some(m) => Cond::header(":method", Compare::Exact, m.clone(), false),
        None => Cond::Always,
    };
    let host = match rule.host.as_deref() {
        None | Some("") => Cond::Always,
        // The VM takes `[v6]` up to its `]` as the host, whatever follows.
        Some(h) if h.starts_with('[') => {
            Cond::header(":authority", Compare::Prefix, h.to_string(), true)
        }
        Some(h) => Cond::any(vec![
            Cond::header(":authority", Compare::Exact, h.to_string(), true),
            Cond::header(":authority", Compare::Prefix, format!("{h}:"), true),
        ]),
    };
    Cond::all(vec![method, host, path_cond(&rule.path)])
}

/// A superset of the `:path` values whose part before the query matches `path`.
fn path_cond(path: &PathMatch) -> Cond {
    let (p, exact) = match path {
        PathMatch::Exact(p) => (p.as_str(), true),
        PathMatch::Prefix(p) => (p.as_str(), false),
    };
    if let Some(cut) = p.find(['?', '#']) {
        // Coarser but still a superset: whatever `:path` a rule with `?` or `#` in its path
        // matches starts with the part before that character.
        return prefix_or_always(p.get(..cut).unwrap_or_default());
    }
    if exact {
        Cond::any(vec![
            Cond::header(":path", Compare::Exact, p.to_string(), false),
            Cond::header(":path", Compare::Prefix, format!("{p}?"), false),
        ])
    } else {
        prefix_or_always(p)
    }
}

/// `:path` starts with `p`; every path starts with "" (Envoy refuses an empty prefix).
fn prefix_or_always(p: &str) -> Cond {
    if p.is_empty() {
        Cond::Always
    } else {
        Cond::header(":path", Compare::Prefix, p.to_string(), false)
    }
}

#[cfg(test)]
mod tests;
