// `adtap`: the command-line tool for CI and operators, on the filter's own core (the
// wasm-bindgen `--target nodejs` build in ../node). One function per sub-command; `main`
// dispatches and maps outcomes to exit statuses:
//   0  ok
//   1  invalid input or configuration (or a file that cannot be read)
//   2  bad usage (unknown command or option, a missing argument)
// Results go to stdout, errors and notes to stderr. No output carries a value of the
// configuration beyond what the core itself shows (its messages are redacted; credentials and
// the salt never appear).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { UsageError, InputError, parseArgs } from './args.mjs';
import { findConfigs, describe, secretsOf, redact } from './find.mjs';

const require = createRequire(import.meta.url);
const core = require('../node/adtap.js');
const { version: VERSION } = require('../package.json');

const DIALECTS = ['confluent_v2', 'confluent_v3', 'redpanda'];

const USAGE = {
  main: `usage: adtap <command> [options]

adtap's own core (the code the Envoy filter runs), for CI and operators.

Commands:
  validate       check configurations, alone or inside Envoy, Istio and Envoy Gateway manifests
  preview        the event and the Kafka record a sample request would produce
  decode         a record value back into the event
  native-filter  the native Envoy filter that keeps unmatched requests out of the Wasm VM
  schema         the published JSON Schema of the event value

Run \`adtap <command> --help\` for a command's options. \`adtap --version\` prints the version.
Exit status: 0 ok, 1 invalid input or configuration, 2 bad usage.`,

  validate: `usage: adtap validate [--json] <file|->...

Validates every adtap configuration found in each file (\`-\`: standard input) with the filter's
own rules. A file may be:
  - an adtap configuration, JSON or YAML;
  - an Envoy bootstrap or listener (YAML or JSON): every Wasm HTTP filter and Wasm access logger
    whose plugin is adtap's (root_id or vm_id \`adtap\`, or a module named adtap*.wasm), its
    \`configuration\` a google.protobuf.StringValue (JSON text) or Struct;
  - an Istio WasmPlugin (\`spec.pluginConfig\`) or an Envoy Gateway EnvoyExtensionPolicy
    (\`spec.wasm[].config\`);
  - several of these as a multi-document YAML stream.
Each configuration is reported with where it is (document, kind, name, JSON path); each error
with the field's path and the filter's message.

  --json      print one JSON report on stdout instead of lines
  -h, --help  this text

A file holding no adtap configuration (a ServiceEntry given with the WasmPlugin) gets a note;
finding none in all the files is an error.

Exit status: 0 every configuration is valid, 1 one is not or none was found (or a file cannot
be read or parsed), 2 bad usage.`,

  preview: `usage: adtap preview --config FILE (--request JSON | --request-file FILE)

Prints (JSON) the event and the Kafka record (topic, key, and the value as the configured
dialect sends it) that the sample request would produce, or why it produces none. With
\`cloudevents\` configured, the record shows its CloudEvents form: \`cloudEvents: "binary"\` and
the \`ce_*\` record headers on Confluent v3, \`cloudEvents: "structured"\` and the
application/cloudevents+json envelope as the value on v2 and Redpanda.

  --config FILE        the configuration (any form \`adtap validate\` reads, holding exactly one)
  --request JSON       the request, e.g. '{"method":"GET","path":"/imp?campaign_id=c-1",
                       "host":"ads.example.com","headers":{"user-agent":"UA"}}'; also body,
                       status, durationUs, requestBytes, responseBytes, route, upstream,
                       peerAddress (ip:port), ts (Unix ms, default now)
  --request-file FILE  the same JSON from a file (\`-\`: standard input)
  -h, --help           this text

Exit status: 0 previewed (matched or not: see \`matched\` and \`reason\`), 1 invalid
configuration or request, 2 bad usage.`,

  decode: `usage: adtap decode --format json|msgpack [--dialect DIALECT] <file|->

Decodes a record value back into the event (JSON on stdout). A structured CloudEvents
envelope (v2 and Redpanda with \`cloudevents\`) is opened: its data is the event.

Without --dialect the input is one record value: raw bytes, or base64 text (whitespace
ignored). With --dialect it is what that REST dialect carries, as the batch request's body or
the record objects in it; every record is decoded and printed as [{ "key", "event" }]:
  confluent_v2, redpanda  {"records":[{"key":…,"value":…}]} (or the record objects)
  confluent_v3            {"key":{…},"value":{"type":"JSON"|"BINARY","data":…}} records,
                          one or more, concatenated

  --format json|msgpack  the configuration's \`format\`
  --dialect DIALECT      confluent_v2, confluent_v3 or redpanda
  -h, --help             this text

Exit status: 0 decoded, 1 the input does not decode, 2 bad usage.`,

  schema: `usage: adtap schema

Prints the published JSON Schema (draft 2020-12) of the event value, versioned by \`v\`: what
downstream teams register and validate records against. The package ships it as
schema/event.v1.schema.json (\`require.resolve('adtap/schema/event.v1.schema.json')\`); it is
generated from the core's own event type and bounds.

  -h, --help  this text

Exit status: 0 printed, 2 bad usage.`,

  'native-filter': `usage: adtap native-filter --config FILE [--deployment access-logger|http-filter]
                           [--wasm PATH] [--filter-only]

Prints (JSON) the Envoy configuration entry that runs adtap behind a native filter built from
the configured rules, so that requests no rule can match never enter the Wasm VM:
  http-filter    an \`http_filters\` entry (ahead of the router): Envoy's composite filter, whose
                 matcher creates the Wasm HTTP filter only for requests a rule can match
  access-logger  an \`access_log\` entry: the Wasm access logger behind an access log filter
                 that passes only requests a rule without capture_body can match
The entry holds \`@ADTAP_CONFIG@\` where adtap's configuration goes: the configuration may hold
secrets and is never printed.

  --config FILE      the configuration (any form \`adtap validate\` reads, holding exactly one)
  --deployment D     default: access-logger for a configuration found in a Wasm access logger,
                     else http-filter
  --wasm PATH        the module's path on the Envoy host (default /etc/envoy/adtap.wasm)
  --filter-only      print only the native part: the access log filter, or the matcher predicate
  -h, --help         this text

Exit status: 0 printed, 1 invalid configuration, 2 bad usage.`,
};

/**
 * Runs `adtap` with `argv` (without the node and script paths). `io` has `stdout(text)`,
 * `stderr(text)` and `stdin()` (a Buffer). Resolves to the exit status.
 */
export async function main(argv, io) {
  const [command, ...rest] = argv;
  const commands = { validate, preview, decode, 'native-filter': nativeFilter, schema };
  try {
    if (command === undefined) throw new UsageError('missing command');
    if (command === '-h' || command === '--help' || command === 'help') {
      io.stdout(USAGE.main);
      return 0;
    }
    if (command === '--version') {
      io.stdout(`adtap ${VERSION}`);
      return 0;
    }
    const run = commands[command];
    if (!run) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    try {
      return await run(rest, io);
    } catch (e) {
      if (e instanceof UsageError) {
        io.stderr(`adtap ${command}: ${e.message}\n\n${USAGE[command]}`);
        return 2;
      }
      throw e;
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`adtap: ${e.message}\n\n${USAGE.main}`);
      return 2;
    }
    if (e instanceof InputError) {
      io.stderr(`adtap ${command}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** The text of `file`, `-` being standard input. */
async function readText(file, io) {
  return (await readBytes(file, io)).toString('utf8');
}

async function readBytes(file, io) {
  if (file === '-') return io.stdin();
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new InputError(`cannot read ${file}: ${e.code ?? e.message}`);
  }
}

const label = (file) => (file === '-' ? '(stdin)' : file);
const json = (value) => JSON.stringify(value, null, 2);

// ---- validate ----------------------------------------------------------------------------

async function validate(argv, io) {
  const { help, options, positionals } = parseArgs(argv, { json: { flag: true } });
  if (help) return helpOf('validate', io);
  if (positionals.length === 0) throw new UsageError('missing <file|->');
  if (positionals.filter((f) => f === '-').length > 1) throw new UsageError('standard input (`-`) can be read once');

  const report = [];
  const notes = [];
  for (const file of positionals) {
    const text = await readText(file, io);
    const { found, notes: fileNotes } = findConfigs(text);
    notes.push(...fileNotes.map((n) => `${label(file)}: ${n}`));
    for (const f of found) {
      const entry = { file: label(file), document: f.document, kind: f.kind, name: f.name, path: f.path };
      if (f.error) {
        report.push({ ...entry, ok: false, errors: [{ path: null, message: f.error }] });
        continue;
      }
      const result = core.validateConfig(f.bytes ?? f.text);
      const secrets = secretsOf(f.text);
      const errors = result.errors.map((e) => ({ path: e.path, message: redact(e.message, secrets) }));
      report.push({ ...entry, ok: result.ok, errors });
    }
  }
  // A file without adtap (a ServiceEntry next to the WasmPlugin) is a note; a run that finds
  // no configuration at all checked nothing, which CI must not take for a pass.
  const nothing = report.length === 0;
  const ok = !nothing && report.every((r) => r.ok);
  if (options.json) {
    io.stdout(json({ ok, configurations: report, notes }));
    if (nothing) io.stderr(`adtap validate: no adtap configuration found in ${positionals.map(label).join(', ')}`);
    return ok ? 0 : 1;
  }
  for (const n of notes) io.stderr(`note: ${n}`);
  for (const r of report) {
    const where = `${r.file}: ${describe(r)}`;
    if (r.ok) {
      io.stdout(`${where}: ok`);
      continue;
    }
    for (const e of r.errors) {
      // An error of the wrapper (no configuration, a wrong @type) belongs to the JSON path
      // already shown; a configuration error adds the field's path inside the configuration.
      io.stderr(e.path === null ? `${where}: ${e.message}` : `${where}: ${e.path}: ${e.message}`);
    }
  }
  if (nothing) {
    io.stderr(`adtap validate: no adtap configuration found in ${positionals.map(label).join(', ')}`);
    return 1;
  }
  const n = report.filter((r) => r.kind !== undefined).length;
  const bad = report.filter((r) => r.kind !== undefined && !r.ok).length;
  const unreadable = report.length - n;
  let summary = `${n} configuration${n === 1 ? '' : 's'} checked: ${bad === 0 ? 'all valid' : `${bad} invalid`}`;
  if (unreadable > 0) summary += `; ${unreadable} document${unreadable === 1 ? '' : 's'} not readable`;
  if (ok) io.stdout(summary);
  else io.stderr(summary);
  return ok ? 0 : 1;
}

function helpOf(command, io) {
  io.stdout(USAGE[command]);
  return 0;
}

/**
 * The one configuration of `file` for preview and native-filter: its JSON text and where it
 * was found. Invalid wrappers, none or several are input errors.
 */
async function oneConfig(file, io) {
  const text = await readText(file, io);
  const { found } = findConfigs(text);
  if (found.length === 0) throw new InputError(`${label(file)}: no adtap configuration found`);
  if (found.length > 1) {
    const list = found.map((f) => `  ${describe(f)}`).join('\n');
    throw new InputError(`${label(file)} holds ${found.length} adtap configurations; give a file with one:\n${list}`);
  }
  const [f] = found;
  if (f.error) throw new InputError(`${label(file)}: ${describe(f)}: ${f.error}`);
  return f;
}

/** Exit 1 with every configuration error, each with its field's path. */
function configErrors(file, f, errors) {
  const where = f.kind === 'adtap configuration' ? label(file) : `${label(file)}: ${describe(f)}`;
  const secrets = secretsOf(f.text);
  const lines = errors.map((e) => `  ${e.path}: ${redact(e.message, secrets)}`).join('\n');
  return new InputError(`${where} is not a valid adtap configuration:\n${lines}`);
}

// ---- preview -----------------------------------------------------------------------------

async function preview(argv, io) {
  const { help, options, positionals } = parseArgs(argv, {
    config: { value: true },
    request: { value: true },
    'request-file': { value: true },
  });
  if (help) return helpOf('preview', io);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!options.config) throw new UsageError('missing --config FILE');
  if (options.request && options['request-file']) throw new UsageError('--request and --request-file exclude each other');
  if (!options.request && !options['request-file']) throw new UsageError('missing --request JSON or --request-file FILE');
  if (options.config === '-' && options['request-file'] === '-') throw new UsageError('standard input (`-`) can be read once');

  const f = await oneConfig(options.config, io);
  const request = options.request ?? (await readText(options['request-file'], io));
  let p;
  try {
    p = core.previewEvent(f.bytes ?? f.text, request);
  } catch (e) {
    // The core says `invalid request: …` for the request; anything else is about the event.
    const from = options.request ? '--request' : label(options['request-file']);
    throw new InputError(e.message.startsWith('invalid request') ? `${from}: ${e.message}` : e.message);
  }
  if (p.reason === 'invalid_config') throw configErrors(options.config, f, p.errors);
  if (!p.matched) {
    io.stdout(json({ matched: false, reason: p.reason }));
    return 0;
  }
  const dialect = dialectOf(f.text);
  const r = requestRecord(dialect, p.requests[dialect].body);
  const record = { dialect, topic: p.record.topic, key: p.record.key };
  if (p.record.cloudEvents) record.cloudEvents = p.record.cloudEvents;
  // v3 records carry Kafka record headers (CloudEvents attributes, record_headers), shown as
  // text; v2 and Redpanda have none.
  if (p.record.headers) record.headers = p.record.headers;
  record.value = r.value;
  record.size = p.record.size;
  io.stdout(json({
    matched: true,
    rule: p.rule,
    eventType: p.eventType,
    topic: p.topic,
    key: p.key,
    sampleRate: p.sampleRate,
    event: p.event,
    record,
  }));
  return 0;
}

/** The configured dialect (the configuration is valid, so the field is one of DIALECTS). */
function dialectOf(text) {
  const d = JSON.parse(text).dialect;
  return DIALECTS.includes(d) ? d : 'confluent_v2';
}

/** The one record of a preview's batch request body in `dialect`, as that dialect sends it. */
function requestRecord(dialect, body) {
  const parsed = JSON.parse(body);
  return dialect === 'confluent_v3' ? parsed : parsed.records[0];
}

// ---- decode ------------------------------------------------------------------------------

async function decode(argv, io) {
  const { help, options, positionals } = parseArgs(argv, {
    format: { value: true, choices: ['json', 'msgpack'] },
    dialect: { value: true, choices: DIALECTS },
  });
  if (help) return helpOf('decode', io);
  if (!options.format) throw new UsageError('missing --format json|msgpack');
  if (positionals.length === 0) throw new UsageError('missing <file|->');
  if (positionals.length > 1) throw new UsageError('one input only');
  const [file] = positionals;
  const bytes = await readBytes(file, io);
  const format = options.format;

  if (!options.dialect) {
    io.stdout(json(decodeValue(recordInput(bytes), format, label(file))));
    return 0;
  }
  const records = dialectRecords(bytes.toString('utf8'), options.dialect, label(file));
  const out = records.map(({ record, where }) => ({
    key: recordKey(record, options.dialect, format, where),
    event: decodeValue(dialectValue(record, options.dialect, format, where), format, `${where}.value`),
  }));
  io.stdout(json(out));
  return 0;
}

/**
 * A record value as given: base64 text when every byte is of the base64 alphabet or
 * whitespace (neither a JSON object nor a MessagePack map can be), else the raw bytes.
 */
function recordInput(bytes) {
  const text = bytes.toString('latin1');
  return /^[A-Za-z0-9+/=\s]*$/.test(text) ? text : new Uint8Array(bytes);
}

function decodeValue(value, format, where) {
  try {
    return core.decodeRecord(value, format);
  } catch (e) {
    throw new InputError(`${where}: ${e.message}`);
  }
}

/** The record objects of a dialect's body: `{ record, where }` with a path for messages. */
function dialectRecords(text, dialect, file) {
  const values = concatenatedJson(text, file);
  const out = [];
  values.forEach((v, i) => {
    const at = values.length > 1 ? `${file}: $[${i}]` : `${file}: $`;
    if (dialect !== 'confluent_v3' && v && typeof v === 'object' && Array.isArray(v.records)) {
      v.records.forEach((record, j) => out.push({ record, where: `${at}.records[${j}]` }));
    } else if (Array.isArray(v)) {
      v.forEach((record, j) => out.push({ record, where: `${at}[${j}]` }));
    } else {
      out.push({ record: v, where: at });
    }
  });
  if (out.length === 0) throw new InputError(`${file}: no record found`);
  for (const { record, where } of out) {
    if (record === null || typeof record !== 'object' || Array.isArray(record) || !('value' in record)) {
      throw new InputError(`${where}: a record must be an object with a \`value\``);
    }
  }
  return out;
}

/** One or more JSON values, concatenated with optional whitespace between (v3 bodies). */
function concatenatedJson(text, file) {
  const values = [];
  let start = -1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (start < 0) {
      if (/\s/.test(c)) continue;
      if (c !== '{' && c !== '[') throw new InputError(`${file}: expected a JSON object at offset ${i}`);
      start = i;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) {
        values.push(parseJson(text.slice(start, i + 1), file, start));
        start = -1;
      }
    }
  }
  if (start >= 0) throw new InputError(`${file}: the JSON value at offset ${start} is not closed`);
  if (values.length === 0) throw new InputError(`${file}: empty input`);
  return values;
}

function parseJson(text, file, offset) {
  try {
    return JSON.parse(text);
  } catch {
    // JSON.parse quotes the input in its message; the position is enough.
    throw new InputError(`${file}: the JSON value at offset ${offset} is not valid JSON`);
  }
}

/** The value to decode, from a record object in `dialect`. */
function dialectValue(record, dialect, format, where) {
  const v = record.value;
  if (dialect === 'confluent_v3') {
    const want = format === 'json' ? 'JSON' : 'BINARY';
    if (!v || typeof v !== 'object' || typeof v.type !== 'string') {
      throw new InputError(`${where}.value: must be {"type": "JSON"|"BINARY", "data": …}`);
    }
    if (v.type !== want) {
      throw new InputError(`${where}.value.type is ${JSON.stringify(v.type)}, --format ${format} expects ${JSON.stringify(want)}`);
    }
    return format === 'json' ? Buffer.from(JSON.stringify(v.data)) : String(v.data ?? '');
  }
  if (format === 'json') {
    if (!v || typeof v !== 'object') {
      throw new InputError(`${where}.value: the json format embeds the event as a JSON object (a string is --format msgpack's base64)`);
    }
    return Buffer.from(JSON.stringify(v));
  }
  if (typeof v !== 'string') throw new InputError(`${where}.value: the msgpack format sends base64 text`);
  return v;
}

/** The record key as text (`null` when the record has none). */
function recordKey(record, dialect, format, where) {
  const k = record.key;
  if (k === undefined || k === null) return null;
  if (dialect === 'confluent_v3') {
    if (k.type === 'STRING') return k.data;
    if (k.type === 'BINARY') return Buffer.from(String(k.data), 'base64').toString('utf8');
    throw new InputError(`${where}.key: must be {"type": "STRING"|"BINARY", "data": …}`);
  }
  if (typeof k !== 'string') throw new InputError(`${where}.key: must be a string`);
  // The binary embedded format (msgpack) base64-encodes keys too.
  return format === 'msgpack' ? Buffer.from(k, 'base64').toString('utf8') : k;
}

// ---- native-filter -----------------------------------------------------------------------

async function nativeFilter(argv, io) {
  const { help, options, positionals } = parseArgs(argv, {
    config: { value: true },
    deployment: { value: true, choices: ['access-logger', 'http-filter'] },
    wasm: { value: true },
    'filter-only': { flag: true },
  });
  if (help) return helpOf('native-filter', io);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!options.config) throw new UsageError('missing --config FILE');

  const f = await oneConfig(options.config, io);
  const deployment = options.deployment ?? f.deployment ?? 'http-filter';
  const r = core.nativeFilter(f.bytes ?? f.text, deployment, options.wasm);
  if (!r.ok) throw configErrors(options.config, f, r.errors);
  if (r.warning) io.stderr(`adtap native-filter: warning: ${r.warning}`);
  io.stdout(json(options['filter-only'] ? r.filter : r.entry));
  return 0;
}

// ---- schema ------------------------------------------------------------------------------

async function schema(argv, io) {
  const { help, positionals } = parseArgs(argv, {});
  if (help) return helpOf('schema', io);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  // The shipped file, as downstream teams get it from the package.
  io.stdout(fs.readFileSync(new URL('../schema/event.v1.schema.json', import.meta.url), 'utf8').trimEnd());
  return 0;
}
