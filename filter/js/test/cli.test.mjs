// The `adtap` command as CI runs it: the package's bin (dist/js/bin/adtap.mjs) in a child
// process, each sub-command on good and bad input, with its exact messages and exit status
// (0 ok, 1 invalid input, 2 bad usage); every manifest and Envoy config under envoy/ validates;
// no output ever carries a secret of the configuration.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DIST, ROOT, loadAdtap, AD_CONFIG } from './helpers.mjs';

const BIN = path.join(DIST, 'bin', 'adtap.mjs');
const adtap = loadAdtap();
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'adtap-cli-'));
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** Runs `adtap args…` (stdin: `input`); the status and both streams. */
function run(args, input) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', cwd: ROOT });
  assert.equal(r.error, undefined);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A file in the test's temporary directory. */
function file(name, content) {
  const p = path.join(TMP, name);
  fs.writeFileSync(p, typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content));
  return p;
}

const lines = (s) => s.split('\n').filter((l) => l !== '');

// ---- usage -------------------------------------------------------------------------------

test('--help for the tool and each command; usage errors exit 2 with the cause', () => {
  const top = run(['--help']);
  assert.equal(top.status, 0);
  assert.match(top.stdout, /^usage: adtap <command> \[options\]/);
  for (const c of ['validate', 'preview', 'decode', 'native-filter', 'schema']) {
    assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'), `the overview lists ${c}`);
    const h = run([c, '--help']);
    assert.equal(h.status, 0, c);
    assert.match(h.stdout, new RegExp(`^usage: adtap ${c}[ \n]`), c);
    assert.match(h.stdout, /Exit status: 0 /);
    assert.equal(h.stderr, '');
  }
  assert.deepEqual(run(['--version']), { status: 0, stdout: `adtap ${JSON.parse(fs.readFileSync(path.join(DIST, 'package.json'), 'utf8')).version}\n`, stderr: '' });

  const cases = [
    [[], 'adtap: missing command', 'usage: adtap <command>'],
    [['lint'], 'adtap: unknown command "lint"', 'usage: adtap <command>'],
    [['validate'], 'adtap validate: missing <file|->', 'usage: adtap validate'],
    [['validate', '--bogus', 'x'], 'adtap validate: unknown option --bogus', 'usage: adtap validate'],
    [['validate', '-x'], 'adtap validate: unknown option -x', 'usage: adtap validate'],
    [['validate', '-', '-'], 'adtap validate: standard input (`-`) can be read once', 'usage: adtap validate'],
    [['validate', '--json=1', 'x'], 'adtap validate: --json takes no value', 'usage: adtap validate'],
    [['preview', '--request', '{}'], 'adtap preview: missing --config FILE', 'usage: adtap preview'],
    [['preview', '--config', 'c'], 'adtap preview: missing --request JSON or --request-file FILE', 'usage: adtap preview'],
    [['preview', '--config', 'c', '--request', '{}', '--request-file', 'r'], 'adtap preview: --request and --request-file exclude each other', 'usage: adtap preview'],
    [['preview', '--config'], 'adtap preview: --config needs a value', 'usage: adtap preview'],
    [['preview', '--config', 'a', '--config', 'b', '--request', '{}'], 'adtap preview: --config is given twice', 'usage: adtap preview'],
    [['decode', 'x'], 'adtap decode: missing --format json|msgpack', 'usage: adtap decode'],
    [['decode', '--format', 'avro', 'x'], 'adtap decode: --format must be one of json, msgpack (got "avro")', 'usage: adtap decode'],
    [['decode', '--format', 'json', '--dialect', 'v4', 'x'], 'adtap decode: --dialect must be one of confluent_v2, confluent_v3, redpanda (got "v4")', 'usage: adtap decode'],
    [['decode', '--format', 'json'], 'adtap decode: missing <file|->', 'usage: adtap decode'],
    [['decode', '--format', 'json', 'a', 'b'], 'adtap decode: one input only', 'usage: adtap decode'],
    [['native-filter'], 'adtap native-filter: missing --config FILE', 'usage: adtap native-filter'],
    [['native-filter', '--config', 'c', '--deployment', 'logger'], 'adtap native-filter: --deployment must be one of access-logger, http-filter (got "logger")', 'usage: adtap native-filter'],
    [['native-filter', '--config', 'c', 'extra'], 'adtap native-filter: unexpected argument "extra"', 'usage: adtap native-filter'],
  ];
  for (const [args, message, usage] of cases) {
    const r = run(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    const [first, blank, third] = r.stderr.split('\n');
    assert.equal(first, message, args.join(' '));
    assert.equal(blank, '');
    assert.ok(third.startsWith(usage), `${args.join(' ')}: ${third}`);
  }
});

// ---- validate: every file under envoy/ ---------------------------------------------------

/** Every Envoy config and manifest in the repository, relative to the root. */
function envoyFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (/\.(ya?ml|json|tmpl)$/.test(e.name)) out.push(rel);
    }
  };
  walk('envoy');
  return out.sort();
}

// Where each file's adtap configuration is: a new file under envoy/ must be added here, so that
// none escapes the check.
const LISTENER = '$.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration.value';
const EXPECTED = {
  'envoy/adtap-example.yaml': `document 1, Envoy Wasm HTTP filter "envoy.filters.http.wasm" at ${LISTENER}`,
  'envoy/adtap-remote-example.yaml': `document 1, Envoy Wasm HTTP filter "envoy.filters.http.wasm" at ${LISTENER}`,
  'envoy/kubernetes/envoy-gateway/extension-policy-http.yaml': 'document 1, Envoy Gateway EnvoyExtensionPolicy "adtap/adtap" at $.spec.wasm[0].config',
  'envoy/kubernetes/envoy-gateway/extension-policy.yaml': 'document 1, Envoy Gateway EnvoyExtensionPolicy "adtap/adtap" at $.spec.wasm[0].config',
  'envoy/kubernetes/istio/wasmplugin-http.yaml': 'document 1, Istio WasmPlugin "adtap" at $.spec.pluginConfig',
  'envoy/kubernetes/istio/wasmplugin.yaml': 'document 1, Istio WasmPlugin "adtap" at $.spec.pluginConfig',
};
// Manifests that go with adtap's and hold no configuration of it.
const WITHOUT_ADTAP = {
  'envoy/kubernetes/envoy-gateway/patch-policy.yaml': 'EnvoyPatchPolicy "adtap-kafka-rest"',
  'envoy/kubernetes/istio/serviceentry.yaml': 'ServiceEntry "kafka-rest"',
};

test('every Envoy config and manifest under envoy/ validates', () => {
  assert.deepEqual(envoyFiles(), [...Object.keys(EXPECTED), ...Object.keys(WITHOUT_ADTAP)].sort());
  for (const [f, where] of Object.entries(EXPECTED)) {
    const r = run(['validate', f]);
    assert.deepEqual(r, { status: 0, stdout: `${f}: ${where}: ok\n1 configuration checked: all valid\n`, stderr: '' }, f);
  }
  for (const [f, what] of Object.entries(WITHOUT_ADTAP)) {
    const r = run(['validate', f]);
    assert.equal(r.status, 1, f);
    assert.equal(r.stdout, '');
    assert.deepEqual(lines(r.stderr), [
      `note: ${f}: document 1: ${what} holds no adtap configuration`,
      `adtap validate: no adtap configuration found in ${f}`,
    ]);
  }
  // A whole directory at once, as CI runs it: the manifests without adtap are notes.
  const all = [...Object.keys(EXPECTED), ...Object.keys(WITHOUT_ADTAP)];
  const r = run(['validate', ...all]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(r.stdout), [
    ...Object.entries(EXPECTED).map(([f, where]) => `${f}: ${where}: ok`),
    '6 configurations checked: all valid',
  ]);
  assert.deepEqual(lines(r.stderr), Object.entries(WITHOUT_ADTAP).map(([f, what]) => `note: ${f}: document 1: ${what} holds no adtap configuration`));
  // The JSON report says the same.
  const j = run(['validate', '--json', ...all]);
  assert.equal(j.status, 0);
  const report = JSON.parse(j.stdout);
  assert.equal(report.ok, true);
  assert.deepEqual(report.configurations.map((c) => [c.file, c.ok, c.errors.length]), Object.keys(EXPECTED).map((f) => [f, true, 0]));
  assert.equal(report.notes.length, 2);
});

// ---- validate: bad input -----------------------------------------------------------------

const SECRETS = ['tok-CANARY-7f3a', 'SALT-CANARY-91c2', 'pw-CANARY-55d0', 'hdr-CANARY-0b1e'];

test('validate reports each error with where it came from and the core\'s message', () => {
  const bad = file('bad.yaml', `# three documents
cluster: kafka_rest
rules:
  - {event_type: i, topic: t, path: {prefix: /imp}, sample_rate: 2}
batch: {max_events: 0}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: adtap}
spec: {pluginName: adtap}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: other}
spec: {pluginName: ratelimit, pluginConfig: {x: 1}}
---
a: [unclosed
`);
  const r = run(['validate', bad]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.deepEqual(lines(r.stderr), [
    `note: ${bad}: document 3: skipped Istio WasmPlugin "other": not adtap (pluginName "ratelimit")`,
    `${bad}: document 1, adtap configuration at $: batch.max_events: must be between 1 and 10000, got 0`,
    `${bad}: document 1, adtap configuration at $: rules[0].sample_rate: must be a finite number between 0.0 and 1.0, got 2`,
    `${bad}: document 2, Istio WasmPlugin "adtap" at $.spec.pluginConfig: has no \`spec.pluginConfig\`: adtap refuses to start without a configuration`,
    `${bad}: document 4: not valid YAML at line 18, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    '2 configurations checked: 2 invalid; 1 document not readable',
  ]);
  // The same errors as the library (the filter's own) for the configuration.
  const core = adtap.validateConfig({ cluster: 'kafka_rest', rules: [{ event_type: 'i', topic: 't', path: { prefix: '/imp' }, sample_rate: 2 }], batch: { max_events: 0 } });
  const j = JSON.parse(run(['validate', '--json', bad]).stdout);
  assert.deepEqual(j.configurations[0].errors, core.errors);
  assert.equal(j.ok, false);

  // A JSON document goes to the core byte for byte: its syntax error has the core's position.
  const broken = file('broken.json', '{"cluster": "kafka_rest", "rules": [}');
  const b = run(['validate', broken]);
  assert.equal(b.status, 1);
  assert.deepEqual(b.stdout, '');
  assert.match(b.stderr, new RegExp(`^${broken.replace(/[.]/g, '\\.')}: document 1: not valid YAML at line 1, column \\d+: .+\n0 configurations checked: all valid; 1 document not readable\n$`));
  // Duplicate keys in JSON are the core's to refuse, exactly as the filter does.
  const dup = file('dup.json', '{"cluster": "a", "cluster": "b", "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}]}');
  const d = run(['validate', dup]);
  assert.equal(d.status, 1);
  assert.deepEqual(lines(d.stderr), [
    `${dup}: document 1, adtap configuration at $: $: duplicate field \`cluster\``,
    '1 configuration checked: 1 invalid',
  ]);

  const missing = run(['validate', path.join(TMP, 'nope.yaml')]);
  assert.deepEqual(missing, { status: 1, stdout: '', stderr: `adtap validate: cannot read ${path.join(TMP, 'nope.yaml')}: ENOENT\n` });
  const empty = run(['validate', '-'], '');
  assert.deepEqual(empty, { status: 1, stdout: '', stderr: 'adtap validate: no adtap configuration found in (stdin)\n' });
});

/** An Envoy listener (JSON) with one adtap HTTP filter and one access logger. */
function listener(filterConfig, loggerConfig) {
  const plugin = (configuration) => ({
    name: 'adtap', root_id: 'adtap',
    vm_config: { vm_id: 'adtap', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: '/etc/envoy/adtap.wasm' } } },
    ...(configuration === undefined ? {} : { configuration }),
  });
  return {
    name: 'ads',
    address: { socket_address: { address: '0.0.0.0', port_value: 8080 } },
    filter_chains: [{ filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        stat_prefix: 'ads',
        access_log: [{
          name: 'adtap-log',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog', config: plugin(loggerConfig) },
        }],
        http_filters: [
          { name: 'other-wasm', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', config: { root_id: 'ratelimit', vm_config: { code: { local: { filename: '/rl.wasm' } } } } } },
          { name: 'adtap', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', config: plugin(filterConfig) } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
        ],
      },
    }] }],
  };
}

const HCM = '$.filter_chains[0].filters[0].typed_config';

test('validate finds adtap in an Envoy listener: StringValue, Struct, wrong wrappers', () => {
  const good = { cluster: 'kafka_rest', rules: [{ event_type: 'i', topic: 't', path: { prefix: '/imp' } }] };
  const f = file('listener.json', listener(
    { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: JSON.stringify(good) },
    { '@type': 'type.googleapis.com/google.protobuf.Struct', value: { ...good, batch: { max_events: 0 } } },
  ));
  const r = run(['validate', f]);
  assert.equal(r.status, 1);
  assert.deepEqual(lines(r.stdout), [
    `${f}: document 1, Envoy Wasm HTTP filter "adtap" at ${HCM}.http_filters[1].typed_config.config.configuration.value: ok`,
  ]);
  assert.deepEqual(lines(r.stderr), [
    `note: ${f}: document 1, ${HCM}.http_filters[0].typed_config: skipped a Wasm filter that is not adtap (root_id "ratelimit")`,
    `${f}: document 1, Envoy Wasm access logger "adtap-log" at ${HCM}.access_log[0].typed_config.config.configuration.value: batch.max_events: must be between 1 and 10000, got 0`,
    '2 configurations checked: 1 invalid',
  ]);

  const wrappers = file('wrappers.yaml', [
    listener(undefined, { '@type': 'type.googleapis.com/google.protobuf.Any', value: {} }),
    listener({ '@type': 'type.googleapis.com/google.protobuf.StringValue', value: { cluster: 'x' } }, 'text'),
  ].map((d) => JSON.stringify(d)).join('\n---\n'));
  const w = run(['validate', wrappers]);
  assert.equal(w.status, 1);
  assert.equal(w.stdout, '');
  const at = (doc, which) => `${wrappers}: document ${doc}, ${which === 'log' ? 'Envoy Wasm access logger "adtap-log"' : 'Envoy Wasm HTTP filter "adtap"'} at ${HCM}.${which === 'log' ? 'access_log[0]' : 'http_filters[1]'}.typed_config.config.configuration`;
  assert.deepEqual(lines(w.stderr).filter((l) => !l.startsWith('note:')), [
    `${at(1, 'log')}["@type"]: is "google.protobuf.Any": adtap reads a google.protobuf.StringValue (JSON text) or a google.protobuf.Struct`,
    `${at(1, 'filter')}: has no \`configuration\`: adtap refuses to start without one`,
    `${at(2, 'log')}: \`configuration\` must be a google.protobuf.Any mapping with \`@type\` and \`value\``,
    `${at(2, 'filter')}.value: must be a string holding adtap's JSON configuration (google.protobuf.StringValue)`,
    '4 configurations checked: 4 invalid',
  ]);
});

test('a Struct configuration is validated as the bytes Envoy hands the filter', () => {
  // As Envoy's loader does: floats and quoted numbers arrive as strings, which the core turns
  // back into numbers where its schema has one; a float stays a string elsewhere (a topic).
  const value = `
                cluster: kafka_rest
                rules:
                  - {event_type: i, topic: 2024.5, path: {prefix: /imp}, sample_rate: "0.25"}
                batch: {max_events: "500", max_bytes: 1048576.0}
                buffer: {max_events: 2.5}`;
  const yaml = file('struct.yaml', `name: ads
filter_chains:
  - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
            - name: adtap
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                config:
                  root_id: adtap
                  configuration:
                    "@type": type.googleapis.com/google.protobuf.Struct
                    value:${value.replace(/\n {16}/g, '\n                      ')}
`);
  const at = `${HCM}.http_filters[0].typed_config.config.configuration.value`;
  const r = run(['validate', yaml]);
  assert.equal(r.status, 1, r.stdout);
  assert.deepEqual(lines(r.stderr), [
    `${yaml}: document 1, Envoy Wasm HTTP filter "adtap" at ${at}: buffer.max_events: invalid type: floating point \`2.5\`, expected usize`,
    '1 configuration checked: 1 invalid',
  ]);
  // Without the fraction it is valid, and previews with the topic as text.
  const ok = file('struct-ok.yaml', fs.readFileSync(yaml, 'utf8').replace('{max_events: 2.5}', '{max_events: 20000}'));
  assert.equal(run(['validate', ok]).status, 0);
  const p = run(['preview', '--config', ok, '--request', '{"path": "/imp"}']);
  assert.equal(p.status, 0, p.stderr);
  assert.equal(JSON.parse(p.stdout).topic, '2024.5');
  // A JSON file: numbers as JSON has them, the same outcome.
  const json = file('struct.json', listener({
    '@type': 'type.googleapis.com/google.protobuf.Struct',
    value: { cluster: 'kafka_rest', rules: [{ event_type: 'i', topic: 't', path: { prefix: '/imp' }, sample_rate: 0.25 }], buffer: { max_events: 2.5 } },
  }, { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: '{"cluster": "kafka_rest", "rules": []}' }));
  const j = run(['validate', json]);
  assert.equal(j.status, 1);
  assert.ok(lines(j.stderr).includes(`${json}: document 1, Envoy Wasm HTTP filter "adtap" at ${HCM}.http_filters[1].typed_config.config.configuration.value: buffer.max_events: invalid type: floating point \`2.5\`, expected usize`), j.stderr);
});

test('validate finds adtap in any other manifest carrying Envoy config (an Istio EnvoyFilter)', () => {
  const cfg = { cluster: 'kafka_rest', rules: [{ event_type: 'i', topic: 't', path: { prefix: '/imp' } }] };
  const f = file('envoyfilter.yaml', `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: adtap-logger}
spec:
  configPatches:
    - applyTo: NETWORK_FILTER
      patch:
        operation: MERGE
        value:
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
            access_log:
              - name: envoy.access_loggers.wasm
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog
                  config:
                    root_id: adtap
                    vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: /etc/istio/adtap.wasm}}}
                    configuration:
                      "@type": type.googleapis.com/google.protobuf.StringValue
                      value: '${JSON.stringify(cfg)}'
`);
  const r = run(['validate', f]);
  assert.deepEqual(r, {
    status: 0,
    stdout: `${f}: document 1, Envoy Wasm access logger "envoy.access_loggers.wasm" at $.spec.configPatches[0].patch.value.typed_config.access_log[0].typed_config.config.configuration.value: ok\n1 configuration checked: all valid\n`,
    stderr: '',
  });
  // The deployment follows where the configuration was found.
  const n = run(['native-filter', '--config', f, '--filter-only']);
  assert.equal(n.status, 0, n.stderr);
  assert.deepEqual(JSON.parse(n.stdout), adtap.nativeFilter(cfg, 'access-logger').filter);
});

test('validate never shows a secret: valid, invalid, structural and YAML errors, every output', () => {
  const [token, salt, password, header] = SECRETS;
  const docs = [
    // Valid, every secret set.
    `cluster: kafka_rest\nauth: {bearer: ${token}}\nclient_ip: {mode: hash, salt: ${salt}}\nrules: [{event_type: i, topic: t, path: {exact: /i}}]`,
    // The salt where it is refused, the password in a wrongly shaped auth.
    `cluster: kafka_rest\nauth: {basic: {user: u, password: ${password}}}\nrules: [{event_type: i, topic: t, path: {exact: /i}}]`,
    `cluster: kafka_rest\nauth: {basic: {username: u, password: ${password}}}\nclient_ip: {mode: truncate, salt: ${salt}}\nrules: [{event_type: i, topic: t, path: {exact: /i}}]`,
    // A secret of the wrong type, and an unknown auth kind holding one.
    `cluster: kafka_rest\nauth: {header: {name: X-Key, value: [${header}]}}\nrules: [{event_type: i, topic: t, path: {exact: /i}}]`,
    `cluster: kafka_rest\nauth: {${token}: x}\nrules: [{event_type: i, topic: t, path: {exact: /i}}]`,
    // A YAML error on a line holding a secret.
    `cluster: kafka_rest\nauth: {bearer: "${token}}\nrules: []`,
  ];
  const f = file('secrets.yaml', docs.join('\n---\n'));
  const plain = run(['validate', f]);
  const asJson = run(['validate', '--json', f]);
  const istio = file('secrets-istio.yaml', `apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: adtap}\nspec:\n  pluginName: adtap\n  pluginConfig: {cluster: c, auth: {bearer: ${token}}, client_ip: {mode: hash, salt: ${salt}}, rules: []}`);
  const fromIstio = run(['validate', istio]);
  for (const r of [plain, asJson, fromIstio]) {
    assert.equal(r.status, 1);
    for (const s of SECRETS) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `${s} shown:\n${r.stdout}\n${r.stderr}`);
    }
  }
  // Each document got its verdict (so the check above saw real messages).
  assert.match(plain.stdout, /document 1, adtap configuration at \$: ok/);
  assert.match(plain.stderr, /document 2, adtap configuration at \$: auth\.basic\.user: unknown field `user`/);
  assert.match(plain.stderr, /document 3, adtap configuration at \$: client_ip\.salt: is only used when/);
  assert.match(plain.stderr, /document 4, adtap configuration at \$: auth\.header\.value: /);
  // An unknown auth kind (a map key, perhaps a pasted credential) is never quoted.
  assert.match(plain.stderr, /document 5, adtap configuration at \$: auth: unknown variant <redacted>, expected one of `basic`, `bearer`, `header`/);
  assert.match(plain.stderr, /document 6: not valid YAML at line \d+, column \d+: /);
  assert.match(fromIstio.stderr, /Istio WasmPlugin "adtap" at \$\.spec\.pluginConfig: rules: /);
});

// ---- preview -----------------------------------------------------------------------------

const REQUEST = {
  host: 'ads.example.com',
  path: '/imp?campaign_id=c-42&crid=cr-7',
  headers: { 'user-agent': 'UA/1', 'x-device-type': 'mobile' },
  peerAddress: '203.0.113.7:5000',
  ts: 1_700_000_000_000,
};

test('preview prints the event and the record as the configured dialect sends it', () => {
  const expected = adtap.previewEvent(AD_CONFIG, REQUEST);
  const cfg = file('ad.json', AD_CONFIG);
  const r = run(['preview', '--config', cfg, '--request', JSON.stringify(REQUEST)]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const p = JSON.parse(r.stdout);
  assert.deepEqual(p, {
    matched: true,
    rule: 0,
    eventType: 'impression',
    topic: 'ad-impressions',
    key: 'c-42',
    sampleRate: 1,
    event: expected.event,
    record: { dialect: 'confluent_v2', topic: 'ad-impressions', key: 'c-42', value: expected.event, size: expected.record.size },
  });
  assert.equal(p.event.query.creative_id, 'cr-7');

  // v3 and msgpack: the value as v3 carries it, which decodes back to the event.
  const v3 = file('v3.yaml', `cluster: kafka_rest\ndialect: confluent_v3\ncluster_id: lkc-1\nformat: msgpack\nrules: [{event_type: impression, topic: ad-impressions, path: {prefix: /imp}}]\nquery_params: [campaign_id]\nkey: query.campaign_id\n`);
  const req = file('req.json', REQUEST);
  const r3 = run(['preview', '--config', v3, '--request-file', req]);
  assert.equal(r3.status, 0, r3.stderr);
  const p3 = JSON.parse(r3.stdout);
  assert.equal(p3.record.dialect, 'confluent_v3');
  assert.equal(p3.record.value.type, 'BINARY');
  assert.deepEqual(adtap.decodeRecord(p3.record.value.data, 'msgpack'), p3.event);
  // The request on standard input, the configuration inside a manifest.
  const fromStdin = run(['preview', '--config', 'envoy/kubernetes/istio/wasmplugin.yaml', '--request-file', '-'], JSON.stringify(REQUEST));
  assert.equal(fromStdin.status, 0, fromStdin.stderr);
  assert.equal(JSON.parse(fromStdin.stdout).record.key, 'c-42');
});

test('preview never shows a secret of the configuration', () => {
  const cfg = file('preview-secrets.json', {
    ...AD_CONFIG,
    dialect: 'confluent_v3',
    cluster_id: 'lkc-1',
    auth: { header: { name: 'X-Api-Key', value: 'hdr-CANARY-0b1e' } },
    client_ip: { mode: 'hash', salt: 'SALT-CANARY-91c2' },
  });
  const r = run(['preview', '--config', cfg, '--request', JSON.stringify(REQUEST)]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(JSON.parse(r.stdout).event.client_ip, /^[0-9a-f]{32}$/, 'the address is hashed with the salt');
  for (const s of SECRETS) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), s);
});

test('preview: no match, sampled out, invalid configuration, bad request', () => {
  const cfg = file('ad2.json', AD_CONFIG);
  const none = run(['preview', '--config', cfg, '--request', '{"path":"/nothing"}']);
  assert.deepEqual(none, { status: 0, stdout: `${JSON.stringify({ matched: false, reason: 'no_rule_matched' }, null, 2)}\n`, stderr: '' });
  const never = run(['preview', '--config', cfg, '--request', '{"path":"/never"}']);
  assert.equal(JSON.parse(never.stdout).reason, 'sampled_out');

  const bad = file('bad-preview.yaml', 'cluster: kafka_rest\nauth: {bearer: tok-CANARY-7f3a}\nrules: [{event_type: i, topic: t, path: {exact: i}}]\n');
  const inv = run(['preview', '--config', bad, '--request', '{"path":"/i"}']);
  assert.equal(inv.status, 1);
  assert.equal(inv.stdout, '');
  assert.deepEqual(lines(inv.stderr), [
    `adtap preview: ${bad} is not a valid adtap configuration:`,
    `  rules[0].path.exact: ${adtap.validateConfig({ cluster: 'kafka_rest', rules: [{ event_type: 'i', topic: 't', path: { exact: 'i' } }] }).errors[0].message}`,
  ]);

  const typo = run(['preview', '--config', cfg, '--request', '{"path":"/imp","peerAddr":"1.2.3.4:5"}']);
  assert.equal(typo.status, 1);
  assert.match(typo.stderr, /^adtap preview: --request: invalid request: unknown field `peerAddr`, expected one of /);
  const notJson = run(['preview', '--config', cfg, '--request', 'path=/imp']);
  assert.equal(notJson.status, 1);
  assert.match(notJson.stderr, /^adtap preview: --request: invalid request: expected value at line 1 column 1\n$/);

  const two = file('two.yaml', `${JSON.stringify(AD_CONFIG)}\n---\n${JSON.stringify(AD_CONFIG)}\n`);
  const several = run(['preview', '--config', two, '--request', '{"path":"/imp"}']);
  assert.equal(several.status, 1);
  assert.deepEqual(lines(several.stderr), [
    `adtap preview: ${two} holds 2 adtap configurations; give a file with one:`,
    '  document 1, adtap configuration at $',
    '  document 2, adtap configuration at $',
  ]);
  const nothing = run(['preview', '--config', 'envoy/kubernetes/istio/serviceentry.yaml', '--request', '{"path":"/imp"}']);
  assert.deepEqual(nothing, { status: 1, stdout: '', stderr: 'adtap preview: envoy/kubernetes/istio/serviceentry.yaml: no adtap configuration found\n' });
});

// ---- decode ------------------------------------------------------------------------------

test('decode: raw bytes or base64, json or msgpack, and each dialect\'s records', () => {
  for (const format of ['json', 'msgpack']) {
    const p = adtap.previewEvent({ ...AD_CONFIG, format, cluster_id: 'lkc-1' }, REQUEST);
    const raw = file(`value.${format}`, Buffer.from(p.record.valueBase64, 'base64'));
    const b64 = file(`value.${format}.b64`, `${p.record.valueBase64.replace(/(.{60})/g, '$1\n')}\n`);
    for (const input of [raw, b64]) {
      const r = run(['decode', '--format', format, input]);
      assert.equal(r.status, 0, `${input}: ${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout), p.event, input);
    }
    for (const dialect of ['confluent_v2', 'confluent_v3', 'redpanda']) {
      const body = file(`body.${format}.${dialect}`, p.requests[dialect].body);
      const r = run(['decode', '--format', format, '--dialect', dialect, body]);
      assert.equal(r.status, 0, `${dialect} ${format}: ${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout), [{ key: 'c-42', event: p.event }], `${dialect} ${format}`);
    }
  }
  // Several v3 records, concatenated, from standard input.
  const p = adtap.previewEvent({ ...AD_CONFIG, dialect: 'confluent_v3', cluster_id: 'lkc-1' }, REQUEST);
  const two = `${p.requests.confluent_v3.body}\n${p.requests.confluent_v3.body}`;
  const r = run(['decode', '--format', 'json', '--dialect', 'confluent_v3', '-'], two);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).length, 2);
});

test('decode: bad input exits 1 naming the record and the cause', () => {
  const p = adtap.previewEvent({ ...AD_CONFIG, format: 'msgpack', cluster_id: 'lkc-1' }, REQUEST);
  const cases = [
    [['--format', 'json', '-'], 'bm90IGFuIGV2ZW50', 'adtap decode: (stdin): cannot decode json record: json decoding failed: expected ident at line 1 column 2'],
    [['--format', 'json', '-'], '', 'adtap decode: (stdin): record is empty'],
    [['--format', 'msgpack', '-'], 'QUJD=', 'adtap decode: (stdin): record is not valid base64: Invalid symbol 61, offset 4.'],
    [['--format', 'json', '--dialect', 'confluent_v3', '-'], p.requests.confluent_v3.body, 'adtap decode: (stdin): $.value.type is "BINARY", --format json expects "JSON"'],
    [['--format', 'json', '--dialect', 'confluent_v2', '-'], p.requests.confluent_v2.body, 'adtap decode: (stdin): $.records[0].value: the json format embeds the event as a JSON object (a string is --format msgpack\'s base64)'],
    [['--format', 'msgpack', '--dialect', 'redpanda', '-'], '{"records":[{"key":"a","value":{"v":1}}]}', 'adtap decode: (stdin): $.records[0].value: the msgpack format sends base64 text'],
    [['--format', 'json', '--dialect', 'confluent_v2', '-'], '{"records":[]}', 'adtap decode: (stdin): no record found'],
    [['--format', 'json', '--dialect', 'confluent_v2', '-'], '{"records":[{"key":"a"}]}', 'adtap decode: (stdin): $.records[0]: a record must be an object with a `value`'],
    [['--format', 'json', '--dialect', 'confluent_v3', '-'], '{"value": {', 'adtap decode: (stdin): the JSON value at offset 0 is not closed'],
    [['--format', 'json', '--dialect', 'confluent_v3', '-'], '{"value": nope}', 'adtap decode: (stdin): the JSON value at offset 0 is not valid JSON'],
    [['--format', 'json', '--dialect', 'confluent_v3', '-'], 'value', 'adtap decode: (stdin): expected a JSON object at offset 0'],
    [['--format', 'json', path.join(TMP, 'absent')], undefined, `adtap decode: cannot read ${path.join(TMP, 'absent')}: ENOENT`],
  ];
  for (const [args, input, message] of cases) {
    const r = run(['decode', ...args], input);
    assert.equal(r.status, 1, `${message}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${message}\n`);
  }
});

// ---- native-filter -----------------------------------------------------------------------

const BODY_RULES = {
  cluster: 'kafka_rest',
  auth: { basic: { username: 'u', password: 'pw-CANARY-55d0' } },
  client_ip: { mode: 'hash', salt: 'SALT-CANARY-91c2' },
  rules: [
    { event_type: 'impression', topic: 'ad-impressions', method: 'GET', path: { prefix: '/imp' } },
    { event_type: 'bid', topic: 'bids', method: 'POST', path: { exact: '/bid' }, capture_body: true },
  ],
};

test('native-filter prints the core\'s entry and filter, without the configuration', () => {
  const cfg = file('native.json', BODY_RULES);
  const http = run(['native-filter', '--config', cfg]);
  assert.equal(http.status, 0, http.stderr);
  assert.equal(http.stderr, '');
  const entry = JSON.parse(http.stdout);
  assert.deepEqual(entry, adtap.nativeFilter(BODY_RULES, 'http-filter').entry);
  assert.equal(entry.name, 'adtap');
  assert.equal(entry.typed_config['@type'], 'type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher');
  const action = entry.typed_config.xds_matcher.matcher_list.matchers[0].on_match.action.typed_config.typed_config;
  assert.equal(action.typed_config.config.configuration.value, '@ADTAP_CONFIG@');
  assert.equal(action.typed_config.config.vm_config.code.local.filename, '/etc/envoy/adtap.wasm');

  const only = run(['native-filter', '--config', cfg, '--filter-only']);
  assert.deepEqual(JSON.parse(only.stdout), entry.typed_config.xds_matcher.matcher_list.matchers[0].predicate);

  const log = run(['native-filter', '--config', cfg, '--deployment', 'access-logger', '--wasm', '/opt/adtap.wasm']);
  assert.equal(log.status, 0, log.stderr);
  const logEntry = JSON.parse(log.stdout);
  assert.equal(logEntry.name, 'envoy.access_loggers.wasm');
  assert.equal(logEntry.typed_config.config.vm_config.code.local.filename, '/opt/adtap.wasm');
  // Only the impression rule: the logger sees no body.
  assert.deepEqual(logEntry.filter, { and_filter: { filters: [
    { header_filter: { header: { name: ':method', string_match: { exact: 'GET' } } } },
    { header_filter: { header: { name: ':path', string_match: { prefix: '/imp' } } } },
  ] } });
  const logOnly = run(['native-filter', '--config', cfg, '--deployment', 'access-logger', '--filter-only']);
  assert.deepEqual(JSON.parse(logOnly.stdout), logEntry.filter);
  for (const r of [http, only, log, logOnly]) {
    for (const s of SECRETS) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), s);
  }

  // From an Envoy config: the deployment is the one the configuration was found in.
  const inLogger = file('logger.json', listener(undefined, { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: JSON.stringify(BODY_RULES) }));
  const viaLogger = run(['native-filter', '--config', inLogger, '--filter-only']);
  assert.equal(viaLogger.status, 1, 'the listener also holds an HTTP filter without configuration');
  const loggerOnly = listener(undefined, { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: JSON.stringify(BODY_RULES) });
  loggerOnly.filter_chains[0].filters[0].typed_config.http_filters.splice(1, 1);
  const lf = file('logger-only.json', loggerOnly);
  const fromLogger = run(['native-filter', '--config', lf, '--filter-only']);
  assert.equal(fromLogger.status, 0, fromLogger.stderr);
  assert.deepEqual(JSON.parse(fromLogger.stdout), logEntry.filter);
});

test('native-filter: a deployment without rules warns; an invalid configuration exits 1', () => {
  const bodyOnly = file('body-only.json', { cluster: 'c', rules: [BODY_RULES.rules[1]] });
  const r = run(['native-filter', '--config', bodyOnly, '--deployment', 'access-logger', '--filter-only']);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, 'adtap native-filter: warning: the access logger captures no rule (every rule has capture_body): its filter matches no request, so it never enters the VM\n');
  assert.deepEqual(JSON.parse(r.stdout), { and_filter: { filters: [
    { header_filter: { header: { name: ':method', present_match: true } } },
    { header_filter: { header: { name: ':method', present_match: false } } },
  ] } });

  const bad = file('native-bad.json', { ...BODY_RULES, rules: [] });
  const inv = run(['native-filter', '--config', bad]);
  assert.equal(inv.status, 1);
  assert.equal(inv.stdout, '');
  const [err] = adtap.validateConfig({ ...BODY_RULES, rules: [] }).errors;
  assert.equal(inv.stderr, `adtap native-filter: ${bad} is not a valid adtap configuration:\n  ${err.path}: ${err.message}\n`);
  for (const s of SECRETS) assert.ok(!inv.stderr.includes(s));

  assert.throws(() => adtap.nativeFilter(BODY_RULES, 'logger'), { message: 'unknown deployment `logger` (expected "access-logger" or "http-filter")' });
  assert.throws(() => adtap.nativeFilter(BODY_RULES, 'http-filter', ''), { message: 'wasm_path must be a non-empty string' });
});

// ---- the package -------------------------------------------------------------------------

test('the packed package installs and puts `adtap` on the path (npm bin)', () => {
  const npm = (args, cwd) => {
    const r = spawnSync('npm', args, { cwd, encoding: 'utf8' });
    assert.equal(r.status, 0, `npm ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const where = fs.mkdtempSync(path.join(TMP, 'pack-'));
  const tgz = npm(['pack', '--silent', '--pack-destination', where], DIST).trim().split('\n').at(-1);
  const app = path.join(where, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), '{"name": "app", "private": true}');
  // The one dependency (yaml) comes from npm's cache, filled by build-js.sh's `npm ci`.
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', path.join(where, tgz)], app);
  const bin = path.join(app, 'node_modules', '.bin', 'adtap');
  const r = spawnSync(bin, ['validate', path.join(ROOT, 'envoy', 'kubernetes', 'istio', 'wasmplugin.yaml')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Istio WasmPlugin "adtap" at \$\.spec\.pluginConfig: ok\n1 configuration checked: all valid\n$/);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'adtap', 'package.json'), 'utf8')).dependencies, { yaml: '2.9.1' });
});

// ---- schema and CloudEvents ----------------------------------------------------------------

test('schema prints the published schema: the file the package ships, the core\'s EVENT_SCHEMA_JSON', () => {
  const shipped = fs.readFileSync(path.join(DIST, 'schema', 'event.v1.schema.json'), 'utf8');
  assert.equal(shipped, fs.readFileSync(path.join(ROOT, 'filter', 'core', 'schema', 'event.v1.schema.json'), 'utf8'));
  assert.equal(shipped, adtap.eventSchema(), 'the shipped file is the core\'s, byte for byte');
  const r = run(['schema']);
  assert.deepEqual(r, { status: 0, stdout: `${shipped.trimEnd()}\n`, stderr: '' });
  const s = JSON.parse(r.stdout);
  assert.equal(s.$id, 'urn:adtap:event:v1');
  for (const field of ['v', 'id', 'type', 'ts', 'method', 'host', 'path']) assert.ok(field in s.properties, field);
  const extra = run(['schema', 'v2']);
  assert.equal(extra.status, 2);
  assert.equal(extra.stderr.split('\n')[0], 'adtap schema: unexpected argument "v2"');
});

const CE = {
  cluster: 'kafka_rest',
  cloudevents: { source: '/adtap/edge' },
  rules: [{ event_type: 'impression', topic: 'ad-impressions', path: { prefix: '/imp' } }],
  query_params: ['campaign_id'],
  key: 'query.campaign_id',
};
const CE_REQUEST = { path: '/imp?campaign_id=c-42', host: 'ads.example.com', headers: { traceparent: '00-abc-01' }, ts: 1_700_000_000_000 };

test('preview shows the CloudEvents form: v3 record headers, the v2 structured envelope', () => {
  const v3 = file('ce-v3.json', { ...CE, dialect: 'confluent_v3', cluster_id: 'lkc-1', record_headers: ['traceparent'] });
  const r3 = run(['preview', '--config', v3, '--request', JSON.stringify(CE_REQUEST)]);
  assert.equal(r3.status, 0, r3.stderr);
  const p3 = JSON.parse(r3.stdout);
  assert.equal(p3.record.cloudEvents, 'binary');
  assert.deepEqual(p3.record.headers, [
    { name: 'ce_specversion', value: '1.0' },
    { name: 'ce_id', value: 'preview-0' },
    { name: 'ce_source', value: '/adtap/edge' },
    { name: 'ce_type', value: 'adtap.impression' },
    { name: 'ce_time', value: '2023-11-14T22:13:20.000Z' },
    { name: 'ce_dataschema', value: 'urn:adtap:event:v1' },
    { name: 'traceparent', value: '00-abc-01' },
  ]);
  assert.equal(p3.event.id, 'preview-0', 'ce_id is the event id');
  assert.deepEqual(p3.record.value, { type: 'JSON', data: p3.event });

  for (const format of ['json', 'msgpack']) {
    const v2 = file(`ce-v2-${format}.json`, { ...CE, format });
    const r2 = run(['preview', '--config', v2, '--request', JSON.stringify(CE_REQUEST)]);
    assert.equal(r2.status, 0, r2.stderr);
    const p2 = JSON.parse(r2.stdout);
    assert.equal(p2.record.cloudEvents, 'structured');
    assert.equal(p2.record.headers, undefined, 'v2 has no record headers');
    const envelope = format === 'json' ? p2.record.value : JSON.parse(Buffer.from(p2.record.value, 'base64').toString('utf8'));
    const { data, data_base64: data64, ...attributes } = envelope;
    assert.deepEqual(attributes, {
      specversion: '1.0', id: 'preview-0', source: '/adtap/edge', type: 'adtap.impression',
      time: '2023-11-14T22:13:20.000Z', dataschema: 'urn:adtap:event:v1',
      datacontenttype: format === 'json' ? 'application/json' : 'application/msgpack',
    });
    if (format === 'json') assert.deepEqual(data, p2.event);
    else assert.deepEqual(adtap.decodeRecord(data64, 'msgpack'), p2.event);
  }
});

test('decode opens structured CloudEvents envelopes, raw and in a v2 or Redpanda body', () => {
  for (const format of ['json', 'msgpack']) {
    const p = adtap.previewEvent({ ...CE, format }, CE_REQUEST);
    assert.equal(p.record.cloudEvents, 'structured');
    const raw = file(`ce-value-${format}`, Buffer.from(p.record.valueBase64, 'base64'));
    const r = run(['decode', '--format', format, raw]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), p.event);
    for (const dialect of ['confluent_v2', 'redpanda']) {
      const body = file(`ce-body-${format}-${dialect}`, p.requests[dialect].body);
      const d = run(['decode', '--format', format, '--dialect', dialect, body]);
      assert.equal(d.status, 0, d.stderr);
      assert.deepEqual(JSON.parse(d.stdout), [{ key: 'c-42', event: p.event }]);
    }
  }
  const noData = run(['decode', '--format', 'json', '-'], '{"specversion":"1.0","id":"x"}');
  assert.deepEqual(noData, { status: 1, stdout: '', stderr: 'adtap decode: (stdin): cannot decode json record: cloudevents envelope: `datacontenttype` "" is neither application/json nor application/msgpack\n' });
  const p = adtap.previewEvent({ ...CE, format: 'msgpack' }, CE_REQUEST);
  const wrong = run(['decode', '--format', 'json', '-'], p.record.valueBase64);
  assert.deepEqual(wrong, { status: 1, stdout: '', stderr: 'adtap decode: (stdin): cannot decode json record: the CloudEvents envelope holds a msgpack event (its datacontenttype), not json\n' });
});
