//! Offline validation of the Kubernetes manifests under `envoy/kubernetes/` (Istio and Envoy
//! Gateway), as far as this machine allows without a cluster:
//! - each document against its CRD's `openAPIV3Schema` (`../shared/reference/k8s/`, or
//!   `$ADTAP_K8S_SCHEMAS`) with `check-jsonschema` (PyPI, in the project venv; `./build.sh
//!   setup`). The schema is made strict first: `x-kubernetes-*` keys dropped, and objects that
//!   list their properties refuse others (the API server would silently prune a misspelt field;
//!   here it fails). CEL rules (`x-kubernetes-validations`) are not checked;
//! - the adtap configuration inside each through adtap's own validator
//!   (`adtap_core::Config::parse`), and its `cluster` against the name the platform gives the
//!   REST proxy's cluster (Istio: `outbound|PORT||HOST` of the ServiceEntry; Envoy Gateway: the
//!   cluster the EnvoyPatchPolicy adds, itself accepted by the real Envoy).
#![cfg(test)]

mod support;

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use support::yaml_docs_of;

/// The manifests, relative to the repository root.
const MANIFESTS: [&str; 6] = [
    "envoy/kubernetes/istio/wasmplugin.yaml",
    "envoy/kubernetes/istio/wasmplugin-http.yaml",
    "envoy/kubernetes/istio/serviceentry.yaml",
    "envoy/kubernetes/envoy-gateway/extension-policy.yaml",
    "envoy/kubernetes/envoy-gateway/extension-policy-http.yaml",
    "envoy/kubernetes/envoy-gateway/patch-policy.yaml",
];

/// The CRD file for each (API group, kind).
const CRDS: [(&str, &str, &str); 5] = [
    (
        "extensions.istio.io",
        "WasmPlugin",
        "istio-wasmplugins.crd.yaml",
    ),
    (
        "networking.istio.io",
        "ServiceEntry",
        "istio-serviceentries.crd.yaml",
    ),
    (
        "gateway.envoyproxy.io",
        "EnvoyExtensionPolicy",
        "envoy-gateway-envoyextensionpolicies.crd.yaml",
    ),
    (
        "gateway.envoyproxy.io",
        "EnvoyPatchPolicy",
        "envoy-gateway-envoypatchpolicies.crd.yaml",
    ),
    (
        "gateway.envoyproxy.io",
        "Backend",
        "envoy-gateway-backends.crd.yaml",
    ),
];

/// A manifest's documents, with the placeholders `./build.sh package` fills in (digests,
/// version) set to well-formed values.
fn docs(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(adtap_stack::repo_root().join(rel)).unwrap();
    let hex = "0123456789abcdef".repeat(4);
    let text = text
        .replace("@ADTAP_IMAGE_DIGEST@", &hex)
        .replace("@ADTAP_WASM_SHA256@", &hex)
        .replace("@ADTAP_VERSION@", "0.1.0");
    assert!(!text.contains("@ADTAP_"), "{rel}: unknown placeholder");
    yaml_docs_of(&text)
}

fn schemas_dir() -> PathBuf {
    std::env::var_os("ADTAP_K8S_SCHEMAS").map_or_else(
        || adtap_stack::repo_root().join("../shared/reference/k8s"),
        PathBuf::from,
    )
}

/// Kubernetes' structural schema as a strict JSON Schema: `x-kubernetes-*` dropped, and
/// `additionalProperties: false` wherever properties are listed and unknown fields are not
/// preserved.
fn strict(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => {
            let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
            let mut out: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| !k.starts_with("x-kubernetes-"))
                .map(|(k, v)| {
                    // `properties` maps names to schemas: recurse into each, not into the map.
                    if k == "properties" {
                        let props = v.as_object().unwrap();
                        let props = props.iter().map(|(n, s)| (n.clone(), strict(s))).collect();
                        (k.clone(), Value::Object(props))
                    } else {
                        (k.clone(), strict(v))
                    }
                })
                .collect();
            if out.contains_key("properties")
                && !out.contains_key("additionalProperties")
                && !preserve
            {
                out.insert("additionalProperties".into(), json!(false));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(strict).collect()),
        other => other.clone(),
    }
}

/// The strict schema for a document's apiVersion and kind.
fn schema_for(doc: &Value) -> Value {
    let (group, version) = doc["apiVersion"].as_str().unwrap().split_once('/').unwrap();
    let kind = doc["kind"].as_str().unwrap();
    let (_, _, file) = CRDS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .unwrap_or_else(|| panic!("no CRD schema for {group} {kind}"));
    let text = std::fs::read_to_string(schemas_dir().join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", schemas_dir().join(file).display()));
    let crd = yaml_docs_of(&text).remove(0);
    let v = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version && v["served"] == true)
        .unwrap_or_else(|| panic!("{kind}: version {version} not served"));
    let mut schema = strict(&v["schema"]["openAPIV3Schema"]);
    // The object's envelope, which the API server checks itself (Istio's schemas leave it out).
    let props = schema["properties"].as_object_mut().unwrap();
    props.insert("apiVersion".into(), json!({"const": doc["apiVersion"]}));
    props.insert("kind".into(), json!({"const": kind}));
    props.entry("metadata").or_insert(json!({"type": "object"}));
    let mut required = schema["required"].as_array().cloned().unwrap_or_default();
    for k in ["apiVersion", "kind", "metadata", "spec"] {
        if !required.contains(&json!(k)) {
            required.push(json!(k));
        }
    }
    schema["required"] = Value::Array(required);
    schema
}

/// `check-jsonschema` on one document: `Ok` or its report.
fn validate(doc: &Value, dir: &Path, name: &str) -> Result<(), String> {
    let schema = dir.join(format!("{name}.schema.json"));
    let instance = dir.join(format!("{name}.json"));
    std::fs::write(&schema, serde_json::to_vec(&schema_for(doc)).unwrap()).unwrap();
    std::fs::write(&instance, serde_json::to_vec(doc).unwrap()).unwrap();
    support::check_jsonschema(&schema, &[instance])
}

fn parse_adtap(rel: &str, cfg: &Value) -> adtap_core::Config {
    adtap_core::Config::parse(cfg.to_string().as_bytes()).unwrap_or_else(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!(
            "{rel}: adtap refuses its configuration: {}",
            list.join("; ")
        )
    })
}

/// Every document of that kind, with its file.
fn find(kind: &str) -> Vec<(&'static str, Value)> {
    MANIFESTS
        .iter()
        .flat_map(|rel| docs(rel).into_iter().map(move |d| (*rel, d)))
        .filter(|(_, d)| d["kind"] == kind)
        .collect()
}

#[test]
fn every_manifest_matches_its_crd_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (i, rel) in MANIFESTS.iter().enumerate() {
        for (j, doc) in docs(rel).iter().enumerate() {
            kinds.insert(doc["kind"].as_str().unwrap().to_string());
            if let Err(report) = validate(doc, dir.path(), &format!("m{i}-{j}")) {
                failures.push(format!("{rel} (document {j}):\n{report}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let want = [
        "EnvoyExtensionPolicy",
        "EnvoyPatchPolicy",
        "ServiceEntry",
        "WasmPlugin",
    ];
    assert_eq!(kinds.iter().map(String::as_str).collect::<Vec<_>>(), want);
}

/// The validation is not vacuous: a misspelt field, a wrong enum value and a wrong type are
/// each refused, naming the place.
#[test]
fn the_schema_check_refuses_broken_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let (_, wasm_plugin) = find("WasmPlugin").remove(0);
    let (_, policy) = find("EnvoyExtensionPolicy").remove(0);
    let cases: Vec<(Value, &str)> = vec![
        {
            let mut d = wasm_plugin.clone();
            d["spec"]["failStrategy"] = json!("FAIL_SOMETIMES");
            (d, "FAIL_SOMETIMES")
        },
        {
            let mut d = wasm_plugin.clone();
            let spec = d["spec"].as_object_mut().unwrap();
            let cfg = spec.remove("pluginConfig").unwrap();
            spec.insert("pluginConfg".into(), cfg);
            (d, "pluginConfg")
        },
        {
            let mut d = policy.clone();
            d["spec"]["wasm"][0]["failOpen"] = json!("yes");
            (d, "failOpen")
        },
    ];
    for (i, (doc, needle)) in cases.iter().enumerate() {
        let report = validate(doc, dir.path(), &format!("bad{i}")).expect_err(needle);
        assert!(report.contains(needle), "{needle}: {report}");
    }
}

#[test]
fn istio_plugins_carry_a_valid_adtap_configuration_naming_the_service_entrys_cluster() {
    let (_, se) = find("ServiceEntry").remove(0);
    let cluster = format!(
        "outbound|{}||{}",
        se["spec"]["ports"][0]["number"],
        se["spec"]["hosts"][0].as_str().unwrap()
    );
    let plugins = find("WasmPlugin");
    assert_eq!(plugins.len(), 2, "the OCI and the HTTP variant");
    for (rel, p) in plugins {
        let spec = &p["spec"];
        let cfg = parse_adtap(rel, &spec["pluginConfig"]);
        assert_eq!(cfg.cluster, cluster, "{rel}");
        assert_eq!(spec["pluginName"], "adtap", "{rel}: the root id");
        assert_eq!(spec["failStrategy"], "FAIL_OPEN", "{rel}");
        assert_eq!(spec["type"], "HTTP", "{rel}");
        let url = spec["url"].as_str().unwrap();
        assert!(
            url.starts_with("oci://") || url.starts_with("https://"),
            "{rel}: {url}"
        );
    }
}

#[test]
fn envoy_gateway_policies_carry_a_valid_adtap_configuration_naming_the_patched_cluster() {
    let (_, patch) = find("EnvoyPatchPolicy").remove(0);
    let added = &patch["spec"]["jsonPatches"][0];
    assert_eq!(
        added["type"],
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    );
    assert_eq!(
        (&added["operation"]["op"], &added["operation"]["path"]),
        (&json!("add"), &json!(""))
    );
    let cluster = &added["operation"]["value"];
    let policies = find("EnvoyExtensionPolicy");
    assert_eq!(policies.len(), 2, "the Image and the HTTP variant");
    for (rel, p) in policies {
        let wasm = &p["spec"]["wasm"][0];
        let cfg = parse_adtap(rel, &wasm["config"]);
        assert_eq!(json!(cfg.cluster), cluster["name"], "{rel}");
        assert_eq!(wasm["rootID"], "adtap", "{rel}");
        assert_eq!(wasm["failOpen"], true, "{rel}");
        assert_eq!(
            p["spec"]["targetRefs"][0]["kind"], "HTTPRoute",
            "{rel}: per-route, the platform's native skip"
        );
    }

    // The added cluster is a real Envoy cluster: the real Envoy accepts it.
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = json!({"static_resources": {"clusters": [cluster]}});
    let v = adtap_stack::envoy::validate(&bootstrap.to_string(), dir.path()).unwrap();
    assert!(v.exit.is_some_and(|s| s.success()), "{}", v.log);
}
