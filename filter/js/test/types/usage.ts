// Compiled (not run) by types.test.mjs: the generated .d.ts must describe the API usefully.
import { validateConfig, previewEvent, decodeRecord, nativeFilter } from 'adtap';
import type { ValidationResult, PreviewResult, AdtapEvent, ConfigError, NativeFilterResult } from 'adtap';

const v: ValidationResult = validateConfig('{"cluster":"c","rules":[]}');
const fromBytes: ValidationResult = validateConfig(new Uint8Array([0x0a]));
void fromBytes;
const firstPath: string | undefined = v.errors.map((e: ConfigError) => e.path)[0];

const p: PreviewResult = previewEvent({ cluster: 'c' }, {
  method: 'GET',
  path: '/imp?campaign_id=1',
  headers: [['user-agent', 'ua']],
  peerAddress: '203.0.113.1:5',
});
if (p.matched && p.event && p.record && p.requests) {
  const t: string = p.event.type;
  const q: string | undefined = p.event.query?.['campaign_id'];
  const b64: string = p.record.valueBase64;
  const v3path: string | null = p.requests.confluent_v3.path;
  void [t, q, b64, v3path];
} else if (p.reason === 'no_rule_matched' || p.reason === 'sampled_out' || p.reason === 'invalid_config') {
  void p.reason;
}

const e: AdtapEvent = decodeRecord(new Uint8Array([1]), 'msgpack');
const ts: number = e.ts;
void [firstPath, ts];

const n: NativeFilterResult = nativeFilter({ cluster: 'c' }, 'access-logger', '/etc/envoy/adtap.wasm');
const rules: number[] | undefined = n.ok ? n.rules : undefined;
void [rules, nativeFilter('{}', 'http-filter')];
