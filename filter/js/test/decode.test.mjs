// decodeRecord: record values back into events; bad input throws a clear Error.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadAdtap, AD_CONFIG, FILTER_RECORDS } from './helpers.mjs';

const adtap = loadAdtap();

function sampleRecord(format) {
  const r = adtap.previewEvent({ ...AD_CONFIG, format }, {
    host: 'ads.example.com',
    path: '/imp?campaign_id=c-9',
    headers: { 'user-agent': 'UA/2' },
    peerAddress: '[2001:db8:1:2::7]:443',
    ts: 1_700_000_000_123,
  });
  assert.equal(r.matched, true);
  return { base64: r.record.valueBase64, event: r.event };
}

test('round trip from base64 and from Uint8Array, json and msgpack', () => {
  for (const format of ['json', 'msgpack']) {
    const { base64, event } = sampleRecord(format);
    const bytes = Buffer.from(base64, 'base64');
    assert.deepEqual(adtap.decodeRecord(base64, format), event);
    assert.deepEqual(adtap.decodeRecord(bytes, format), event, 'a Node Buffer is a Uint8Array');
    assert.deepEqual(adtap.decodeRecord(new Uint8Array(bytes), format), event);
    // Pasted base64 often wraps lines.
    assert.deepEqual(adtap.decodeRecord(base64.replace(/(.{40})/g, '$1\n'), format), event);
    assert.equal(event.query.campaign_id, 'c-9');
    assert.equal(event.user_agent, 'UA/2');
  }
});

test('a JSON record written by hand decodes (the schema is the contract)', () => {
  const event = { v: 1, id: 'abc-1', type: 'click', ts: 5, method: 'GET', host: 'h', path: '/c', query: { a: 'b' } };
  assert.deepEqual(adtap.decodeRecord(new TextEncoder().encode(JSON.stringify(event)), 'json'), event);
});

test('bad input throws an Error with a clear message', () => {
  const { base64 } = sampleRecord('msgpack');
  const cases = [
    [() => adtap.decodeRecord('not base64!', 'json'), /not valid base64/],
    [() => adtap.decodeRecord('', 'json'), /empty/],
    [() => adtap.decodeRecord(new Uint8Array(), 'json'), /empty/],
    [() => adtap.decodeRecord(base64, 'avro'), /unknown record format `avro`/],
    [() => adtap.decodeRecord(base64, undefined), /format must be/],
    [() => adtap.decodeRecord(42, 'json'), /Uint8Array or a base64 string/],
    [() => adtap.decodeRecord(base64, 'json'), /cannot decode json record/],
    [() => adtap.decodeRecord(Buffer.from('{"v":1}'), 'json'), /cannot decode json record/],
    [() => adtap.decodeRecord(Buffer.from('{"v":1,"bogus":2}').toString('base64'), 'json'), /cannot decode json record/],
    [() => adtap.decodeRecord(Buffer.from([0xc1, 0x00]), 'msgpack'), /cannot decode msgpack record/],
  ];
  for (const [fn, message] of cases) {
    assert.throws(fn, (e) => {
      assert.ok(e instanceof Error, `an Error, got ${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

// Records produced by the real filter in the wasm host tests (dist/fixtures/records/*.json:
// { "format": "json" | "msgpack", "value_base64": "…", "event"?: {…expected…} }).
test('records produced by the filter decode', (t) => {
  const files = fs.existsSync(FILTER_RECORDS)
    ? fs.readdirSync(FILTER_RECORDS).filter((f) => f.endsWith('.json')).sort()
    : [];
  if (files.length === 0) {
    const why = `no filter records in ${FILTER_RECORDS} (the wasm host tests write them)`;
    console.log(`# skipped: ${why}`);
    t.skip(why);
    return;
  }
  for (const file of files) {
    const rec = JSON.parse(fs.readFileSync(path.join(FILTER_RECORDS, file), 'utf8'));
    const b64 = rec.value_base64 ?? rec.valueBase64;
    assert.ok(['json', 'msgpack'].includes(rec.format), `${file}: format ${rec.format}`);
    assert.equal(typeof b64, 'string', `${file}: value_base64`);
    let event;
    try {
      event = adtap.decodeRecord(b64, rec.format);
    } catch (e) {
      throw new Error(`${file}: ${e.message}`);
    }
    assert.equal(event.v, 1, file);
    assert.match(event.id, /\S/, file);
    assert.match(event.type, /\S/, file);
    if (rec.event) assert.deepEqual(event, rec.event, file);
    assert.deepEqual(adtap.decodeRecord(Buffer.from(b64, 'base64'), rec.format), event, file);
  }
});
