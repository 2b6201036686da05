// Finding adtap's configurations in what operators keep in their repositories: a plain
// configuration (JSON or YAML), an Envoy bootstrap or listener (YAML or JSON), an Istio
// `WasmPlugin`, an Envoy Gateway `EnvoyExtensionPolicy`, any of them in a multi-document YAML
// stream. Every configuration found comes with where it came from (document, kind, name, JSON
// path) and the JSON text the filter would receive, which the core then validates.
//
// Nothing here echoes a value from the input: messages name keys, kinds, paths and positions,
// never the values (a configuration holds the REST proxy's credentials and the client-IP salt).
import { parseAllDocuments, LineCounter } from 'yaml';
import { envoyStruct } from './struct.mjs';

const WASM_HTTP_FILTER = 'envoy.extensions.filters.http.wasm.v3.Wasm';
const WASM_ACCESS_LOG = 'envoy.extensions.access_loggers.wasm.v3.WasmAccessLog';
// adtap registers this root id; a Wasm filter is adtap's when its plugin says so.
const ROOT_ID = 'adtap';

/** `$.a.b[0]["@type"]`: a JSON path as the core's error paths write them, with `$` at the root. */
export function jsonPath(parts) {
  let out = '$';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) out += `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const typeName = (t) => (typeof t === 'string' ? t.slice(t.lastIndexOf('/') + 1) : undefined);

/**
 * The documents of `text`: one when it is a JSON text (kept verbatim, so the core sees the exact
 * bytes, duplicate keys and all), else every YAML document. Each is `{ index, value }` or
 * `{ index, error }` (1-based index), empty documents left out.
 */
export function documents(text) {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return [{ index: 1, value: JSON.parse(text), text }];
    } catch {
      // Not JSON: flow-style YAML (`{cluster: kafka_rest, …}`) is read below; a broken JSON
      // document gets the YAML parser's position of the problem.
    }
  }
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out = [];
  list.forEach((doc, i) => {
    const index = i + 1;
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      const { line, col } = lineCounter.linePos(e.pos?.[0] ?? 0);
      // The parser's message names the construct, never the text around it.
      out.push({ index, error: `not valid YAML at line ${line}, column ${col}: ${firstSentence(e.message)}` });
      return;
    }
    const value = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    // The parsed document too: a Struct configuration is serialized from its scalars' text.
    out.push({ index, value, yaml: doc });
  });
  return out;
}

function firstSentence(message) {
  // yaml's messages are one line; cut any context it may append after a line break.
  return String(message).split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * Every adtap configuration in one document. Each finding is
 * `{ document, kind, name, path, text, bytes?, deployment? }` (`text`: the JSON the filter
 * receives; `bytes`: what it receives instead, a serialized Struct, when set) or
 * `{ document, kind, name, path, error }` when the configuration cannot be taken out (no
 * configuration, a wrong wrapper). `notes` gets what was looked at and skipped, so nothing is
 * passed over silently.
 */
export function findInDocument(doc, notes) {
  const found = [];
  const where = (kind, name, parts) => ({ document: doc.index, kind, name, path: jsonPath(parts) });
  const v = doc.value;
  if (!isObject(v)) {
    notes.push(`document ${doc.index}: skipped, not a mapping`);
    return found;
  }
  if (typeof v.kind === 'string' && typeof v.apiVersion === 'string') {
    const name = isObject(v.metadata) && typeof v.metadata.name === 'string' ? v.metadata.name : undefined;
    if (v.kind === 'WasmPlugin' && v.apiVersion.startsWith('extensions.istio.io/')) {
      const spec = isObject(v.spec) ? v.spec : {};
      const adtap = spec.pluginName === ROOT_ID || /adtap/.test(String(spec.url ?? ''));
      if (!adtap) {
        notes.push(`document ${doc.index}: skipped Istio WasmPlugin ${quote(name)}: not adtap (pluginName ${quote(spec.pluginName)})`);
        return found;
      }
      const at = where('Istio WasmPlugin', name, ['spec', 'pluginConfig']);
      found.push(fromObject(at, spec.pluginConfig, '`spec.pluginConfig`'));
      return found;
    }
    if (v.kind === 'EnvoyExtensionPolicy' && v.apiVersion.startsWith('gateway.envoyproxy.io/')) {
      const wasm = isObject(v.spec) && Array.isArray(v.spec.wasm) ? v.spec.wasm : [];
      wasm.forEach((w, i) => {
        const url = w?.code?.http?.url ?? w?.code?.image?.url ?? '';
        const adtap = isObject(w) && (w.rootID === ROOT_ID || w.name === ROOT_ID || /adtap/.test(String(url)));
        const label = name && isObject(w) && typeof w.name === 'string' ? `${name}/${w.name}` : name;
        if (!adtap) {
          notes.push(`document ${doc.index}: skipped wasm[${i}] of EnvoyExtensionPolicy ${quote(name)}: not adtap`);
          return;
        }
        const at = where('Envoy Gateway EnvoyExtensionPolicy', label, ['spec', 'wasm', i, 'config']);
        found.push(fromObject(at, w.config, '`config`'));
      });
      if (wasm.length === 0) notes.push(`document ${doc.index}: EnvoyExtensionPolicy ${quote(name)} has no spec.wasm`);
      return found;
    }
    // Any other manifest (an Istio EnvoyFilter, an EnvoyPatchPolicy) may carry Envoy config.
    walkEnvoy(v, [], undefined, doc, found, notes);
    if (found.length === 0) notes.push(`document ${doc.index}: ${v.kind} ${quote(name)} holds no adtap configuration`);
    return found;
  }
  if ('rules' in v || 'cluster' in v) {
    const at = where('adtap configuration', undefined, []);
    found.push({ ...at, text: doc.text ?? JSON.stringify(v) });
    return found;
  }
  walkEnvoy(v, [], undefined, doc, found, notes);
  if (found.length === 0) notes.push(`document ${doc.index}: holds no adtap configuration`);
  return found;
}

const quote = (s) => (s === undefined ? '(unnamed)' : JSON.stringify(String(s)));

/** A configuration given as a YAML/JSON mapping (Istio and Envoy Gateway hand it on as JSON). */
function fromObject(at, value, what) {
  if (value === undefined || value === null) {
    return { ...at, error: `has no ${what}: adtap refuses to start without a configuration` };
  }
  if (typeof value === 'string') return { ...at, text: value };
  return { ...at, text: JSON.stringify(value) };
}

/**
 * Walks an Envoy config for Wasm HTTP filters and Wasm access loggers. `entry` is the name of
 * the list entry (`{name, typed_config}`) being descended, the filter's name in messages.
 */
function walkEnvoy(v, parts, entry, doc, found, notes) {
  if (Array.isArray(v)) {
    v.forEach((item, i) => walkEnvoy(item, [...parts, i], entry, doc, found, notes));
    return;
  }
  if (!isObject(v)) return;
  const type = typeName(v['@type']);
  if (type === WASM_HTTP_FILTER || type === WASM_ACCESS_LOG) {
    const deployment = type === WASM_HTTP_FILTER ? 'http-filter' : 'access-logger';
    const kind = type === WASM_HTTP_FILTER ? 'Envoy Wasm HTTP filter' : 'Envoy Wasm access logger';
    const pc = v.config;
    if (!isAdtapPlugin(pc)) {
      const root = isObject(pc) ? pc.root_id : undefined;
      notes.push(`document ${doc.index}, ${jsonPath(parts)}: skipped a Wasm filter that is not adtap (root_id ${quote(root)})`);
      return;
    }
    found.push(fromPluginConfig(doc, kind, entry ?? pc.name, [...parts, 'config'], pc, deployment));
    return;
  }
  for (const [k, child] of Object.entries(v)) {
    const name = k === 'typed_config' && typeof v.name === 'string' ? v.name : entry;
    walkEnvoy(child, [...parts, k], name, doc, found, notes);
  }
}

/** adtap's plugin: its root id, its VM id, or the module it loads names adtap. */
function isAdtapPlugin(pc) {
  if (!isObject(pc)) return false;
  const vm = isObject(pc.vm_config) ? pc.vm_config : {};
  const code = vm.code ?? {};
  const where = [code.local?.filename, code.remote?.http_uri?.uri].filter((s) => typeof s === 'string');
  return pc.root_id === ROOT_ID || vm.vm_id === ROOT_ID || where.some((s) => /adtap[^/]*\.wasm$/.test(s));
}

/** The configuration of an `envoy.extensions.wasm.v3.PluginConfig`, as Envoy hands it on. */
function fromPluginConfig(doc, kind, name, parts, pc, deployment) {
  const at = (p) => ({ document: doc.index, kind, name, path: jsonPath(p), deployment });
  const c = pc.configuration;
  if (c === undefined || c === null) {
    return { ...at([...parts, 'configuration']), error: 'has no `configuration`: adtap refuses to start without one' };
  }
  if (!isObject(c)) {
    return { ...at([...parts, 'configuration']), error: '`configuration` must be a google.protobuf.Any mapping with `@type` and `value`' };
  }
  const type = typeName(c['@type']);
  const valueAt = at([...parts, 'configuration', 'value']);
  switch (type) {
    case 'google.protobuf.StringValue':
      if (typeof c.value !== 'string') {
        return { ...valueAt, error: 'must be a string holding adtap\'s JSON configuration (google.protobuf.StringValue)' };
      }
      return { ...valueAt, text: c.value };
    case 'google.protobuf.Struct': {
      if (!isObject(c.value)) return { ...valueAt, error: 'must be a mapping (google.protobuf.Struct)' };
      // The core reads the Struct's bytes as the filter gets them from Envoy; `text` (the same
      // document as JSON) serves the command's own reading (the dialect, what to redact).
      const node = doc.yaml?.getIn([...parts, 'configuration', 'value'], true);
      return { ...valueAt, text: JSON.stringify(c.value), bytes: envoyStruct(node ?? c.value, node ? doc.yaml : undefined) };
    }
    case 'google.protobuf.BytesValue':
      if (typeof c.value !== 'string') return { ...valueAt, error: 'must be base64 text (google.protobuf.BytesValue)' };
      return { ...valueAt, text: Buffer.from(c.value, 'base64').toString('utf8') };
    default:
      return {
        ...at([...parts, 'configuration', '@type']),
        error: type === undefined
          ? 'is missing: adtap reads a google.protobuf.StringValue (JSON text) or a google.protobuf.Struct'
          : `is ${JSON.stringify(type)}: adtap reads a google.protobuf.StringValue (JSON text) or a google.protobuf.Struct`,
      };
  }
}

/** Every configuration in `text`, with the notes on what was skipped. */
export function findConfigs(text) {
  const notes = [];
  const found = [];
  for (const doc of documents(text)) {
    if (doc.error) {
      found.push({ document: doc.index, path: '$', error: doc.error });
      continue;
    }
    found.push(...findInDocument(doc, notes));
  }
  return { found, notes };
}

/** `document 1, Envoy Wasm HTTP filter "envoy.filters.http.wasm" at $.static_resources…`. */
export function describe(f) {
  if (f.kind === undefined) return `document ${f.document}`;
  const name = f.name === undefined ? '' : ` ${JSON.stringify(f.name)}`;
  return `document ${f.document}, ${f.kind}${name} at ${f.path}`;
}

// The kinds of `auth`: anything else in that position may be a pasted credential.
const AUTH_KINDS = new Set(['basic', 'bearer', 'header']);

/**
 * The strings of a configuration's JSON `text` that may be secrets: every string value under
 * `auth`, a key of `auth` that is not one of its kinds, and `client_ip.salt`. The core's
 * messages are redacted already; this second guard keeps the command's output clean where one
 * is not (the core quotes an unknown `auth` kind, a map key, in its message today).
 */
export function secretsOf(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    return [];
  }
  if (!isObject(doc)) return [];
  const out = new Set();
  const values = (v) => {
    if (typeof v === 'string') out.add(v);
    else if (Array.isArray(v)) v.forEach(values);
    else if (isObject(v)) Object.values(v).forEach(values);
  };
  values(doc.auth);
  if (isObject(doc.auth)) Object.keys(doc.auth).filter((k) => !AUTH_KINDS.has(k)).forEach((k) => out.add(k));
  if (isObject(doc.client_ip)) values(doc.client_ip.salt);
  // Very short strings would blank out ordinary words of messages; longest first, so that a
  // secret containing another is replaced whole.
  return [...out].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
}

/** `message` with every one of `secrets` replaced by `<redacted>`. */
export function redact(message, secrets) {
  let out = message;
  for (const s of secrets) out = out.split(s).join('<redacted>');
  return out;
}
