// The adtap page: four panels wired to the wasm-bindgen `--target web` build of the core.
// Everything runs in the browser; every panel recomputes on input.
import init, { validateConfig, previewEvent, decodeRecord, eventSchema } from '../web/adtap.js';

const $ = (id) => document.getElementById(id);

const SAMPLE_CONFIG = {
  cluster: 'kafka_rest',
  dialect: 'confluent_v2',
  format: 'json',
  rules: [
    { event_type: 'impression', topic: 'ad-impressions', method: 'GET', path: { prefix: '/imp' } },
    { event_type: 'click', topic: 'ad-clicks', method: 'GET', path: { prefix: '/click' } },
    { event_type: 'bid_request', topic: 'bid-requests', method: 'POST', path: { exact: '/bid' }, capture_body: true },
  ],
  query_params: ['campaign_id', 'creative_id', { name: 'pub', as: 'publisher' }],
  headers: ['x-device-type'],
  client_ip: { mode: 'truncate' },
  key: 'query.campaign_id',
};

function el(tag, props = {}, ...children) {
  const { dataset, ...rest } = props;
  const node = Object.assign(document.createElement(tag), rest);
  Object.assign(node.dataset, dataset ?? {});
  node.append(...children);
  return node;
}

function setStatus(node, kind, content) {
  node.className = `status ${kind}`;
  node.replaceChildren(...(Array.isArray(content) ? content : [content]));
}

// ---- 1. configuration -------------------------------------------------------------------

function renderConfig() {
  const result = validateConfig($('config').value);
  const list = $('config-errors');
  if (result.ok) {
    setStatus($('config-status'), 'ok', '✓ Valid configuration: the filter would accept it.');
    list.replaceChildren();
  } else {
    const n = result.errors.length;
    setStatus($('config-status'), 'bad',
      `✗ ${n} problem${n === 1 ? '' : 's'}: the filter would reject this configuration.`);
    list.replaceChildren(...result.errors.map((e) =>
      el('li', {}, el('span', { className: 'path', textContent: e.path }),
        el('span', { className: 'message', textContent: e.message }))));
  }
  return result.ok;
}

// ---- 2. preview -------------------------------------------------------------------------

function parseHeaders(text) {
  const pairs = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const colon = line.indexOf(':', line.startsWith(':') ? 1 : 0);
    if (colon <= 0) throw new Error(`header line ${i + 1} has no "Name: value"`);
    pairs.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  });
  return pairs;
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text; // v3 bodies are concatenated JSON objects; shown as sent
  }
}

function showRequest(id, req) {
  const head = Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\n');
  const body = req.bodyBase64 ? `(base64) ${req.body}` : pretty(req.body);
  $(id).textContent = `${head}\n\n${body}`;
}

let lastRecord = null;

function clearPreview() {
  for (const id of ['preview-event', 'preview-record', 'req-v2', 'req-v3', 'req-redpanda', 'preview-ce-mode']) {
    $(id).textContent = '';
  }
  $('preview-headers').replaceChildren();
  $('preview-cloudevents').hidden = true;
  $('preview-headers-block').hidden = true;
  $('preview-output').hidden = true;
  lastRecord = null;
}

function renderPreview(configOk) {
  const summary = $('preview-summary');
  clearPreview();
  if (!configOk) {
    setStatus(summary, 'bad', 'Fix the configuration above to preview events.');
    return;
  }
  let result;
  try {
    const status = $('req-status').value.trim();
    result = previewEvent($('config').value, {
      method: $('req-method').value,
      host: $('req-host').value.trim(),
      path: $('req-path').value.trim() || '/',
      headers: parseHeaders($('req-headers').value),
      body: $('req-body').value || undefined,
      peerAddress: $('req-peer').value.trim() || undefined,
      status: status ? Number(status) : undefined,
    });
  } catch (err) {
    setStatus(summary, 'bad', `✗ ${err.message}`);
    return;
  }
  if (!result.matched) {
    const why = {
      no_rule_matched: 'No rule matches this request: the filter captures nothing.',
      sampled_out: `Rule #${result.rule} (${result.eventType}) matches, but its sample_rate is 0: never captured.`,
      invalid_config: 'The configuration is invalid.',
    }[result.reason] ?? result.reason;
    setStatus(summary, 'bad', `— ${why}`);
    return;
  }
  const rows = [
    ['Rule', `#${result.rule}`],
    ['Event type', result.eventType],
    ['Topic', result.topic],
    ['Key', result.key ?? '(none: the key source is absent)'],
  ];
  if (result.sampleRate < 1) {
    rows.push(['Sampling', `captured with probability ${result.sampleRate}; shown as if sampled in`]);
  }
  setStatus(summary, 'ok', [
    '✓ This request produces an event.',
    el('div', { className: 'summary-grid' },
      ...rows.flatMap(([k, v]) => [el('b', { textContent: k }), el('span', { textContent: v })])),
  ]);
  $('preview-event').textContent = JSON.stringify(result.event, null, 2);
  $('preview-record').textContent = result.record.valueText ?? result.record.valueBase64;
  lastRecord = { ...result.record, format: configFormat() };
  showCloudEvents(result.record);
  $('preview-output').hidden = false;
  showRequest('req-v2', result.requests.confluent_v2);
  showRequest('req-v3', result.requests.confluent_v3);
  showRequest('req-redpanda', result.requests.redpanda);
}

/** The configured record format (the configuration is valid when this runs). */
function configFormat() {
  try {
    return JSON.parse($('config').value).format ?? 'json';
  } catch {
    return 'json';
  }
}

const CE_MODES = {
  binary: 'Binary mode (Confluent v3): the value is the event; the CloudEvents attributes travel as ' +
    'the ce_* record headers below.',
  structured: 'Structured mode (no record headers in this dialect): the value is the ' +
    'application/cloudevents+json envelope, the event inside it.',
};

function showCloudEvents(record) {
  if (record.cloudEvents) {
    $('preview-ce-mode').textContent = CE_MODES[record.cloudEvents] ?? record.cloudEvents;
    $('preview-ce-mode').dataset.mode = record.cloudEvents;
    $('preview-cloudevents').hidden = false;
  }
  const headers = record.headers ?? [];
  if (headers.length > 0) {
    $('preview-headers').replaceChildren(...headers.flatMap(({ name, value }) =>
      [el('dt', { textContent: name }), el('dd', { textContent: value, dataset: { header: name } })]));
    $('preview-headers-block').hidden = false;
  }
}

// ---- 3. decode --------------------------------------------------------------------------

function renderDecode() {
  const text = $('record-input').value.trim();
  const format = $('record-format').value;
  const fields = $('record-fields');
  const out = $('record-output');
  fields.replaceChildren();
  out.textContent = '';
  if (!text) {
    setStatus($('record-status'), '', 'Paste a record value to decode it.');
    return;
  }
  try {
    // JSON records may be pasted as their text; anything else is base64.
    // (A CloudEvents envelope is JSON text in either format; base64 never starts with `{`.)
    const input = text.startsWith('{') ? new TextEncoder().encode(text) : text;
    const event = decodeRecord(input, format);
    setStatus($('record-status'), 'ok', `✓ Decoded a ${format} record (schema v${event.v}).`);
    const shown = [
      ['type', event.type], ['id', event.id],
      ['ts', `${event.ts} (${new Date(event.ts).toISOString()})`],
      ['request', `${event.method} ${event.host}${event.path}`],
      ['client_ip', event.client_ip], ['status', event.status],
      ['query', Object.entries(event.query ?? {}).map(([k, v]) => `${k}=${v}`).join('  ')],
    ].filter(([, v]) => v !== undefined && v !== '');
    fields.replaceChildren(...shown.flatMap(([k, v]) =>
      [el('dt', { textContent: k }), el('dd', { textContent: String(v), dataset: { field: k } })]));
    out.textContent = JSON.stringify(event, null, 2);
  } catch (err) {
    setStatus($('record-status'), 'bad', `✗ ${err.message}`);
  }
}

// ---- 4. schema --------------------------------------------------------------------------

function typeOf(prop) {
  if (prop.type) return Array.isArray(prop.type) ? prop.type.join(' | ') : prop.type;
  if (prop.const !== undefined) return JSON.stringify(prop.const);
  if (prop.enum) return prop.enum.map((v) => JSON.stringify(v)).join(' | ');
  return '';
}

function boundsOf(prop) {
  const parts = [];
  const add = (key, label) => prop[key] !== undefined && parts.push(`${label} ${prop[key]}`);
  add('minimum', '≥'); add('maximum', '≤'); add('minLength', 'min length'); add('maxLength', 'max length');
  add('maxProperties', 'max entries');
  if (prop.additionalProperties && typeof prop.additionalProperties === 'object') {
    const inner = boundsOf(prop.additionalProperties);
    if (inner) parts.push(`values: ${inner}`);
  }
  return parts.join(', ');
}

function renderSchema() {
  const text = eventSchema();
  const schema = JSON.parse(text);
  $('schema-id').textContent = schema.$id;
  $('schema-json').textContent = text;
  const required = new Set(schema.required ?? []);
  const rows = Object.entries(schema.properties ?? {}).map(([name, prop]) =>
    el('tr', { dataset: { field: name } },
      el('td', { textContent: required.has(name) ? `${name} *` : name }),
      el('td', { textContent: typeOf(prop) }),
      el('td', { textContent: boundsOf(prop) }),
      el('td', { textContent: prop.description ?? '' })));
  $('schema-fields').tBodies[0].replaceChildren(...rows);
}

// ---- wiring -----------------------------------------------------------------------------

async function main() {
  try {
    await init();
  } catch (err) {
    $('load-status').textContent = `Could not load the WebAssembly module: ${err.message}. ` +
      'Serve this directory over http (node serve.mjs) rather than opening the file.';
    return;
  }
  $('config').value = JSON.stringify(SAMPLE_CONFIG, null, 2);
  const update = () => renderPreview(renderConfig());
  $('config').addEventListener('input', update);
  $('request-form').addEventListener('input', update);
  $('record-input').addEventListener('input', renderDecode);
  $('record-format').addEventListener('change', renderDecode);
  $('record-use').addEventListener('click', () => {
    if (!lastRecord) return;
    $('record-input').value = lastRecord.valueText ?? lastRecord.valueBase64;
    $('record-format').value = lastRecord.format;
    renderDecode();
  });
  update();
  renderDecode();
  renderSchema();
  $('load-status').textContent = 'Ready.';
  document.body.dataset.ready = 'true';
}

main();
