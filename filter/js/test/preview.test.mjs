// previewEvent runs the filter's own capture and encoding steps on a described request.
import test from 'node:test';
import assert from 'node:assert/strict';
import { loadAdtap, AD_CONFIG } from './helpers.mjs';

const adtap = loadAdtap();
const TS = 1_700_000_000_000;

const IMPRESSION = {
  method: 'GET',
  host: 'Ads.Example.com:443',
  path: '/imp/banner?campaign_id=c-42&crid=cr-7&utm_source=mail',
  headers: {
    'User-Agent': 'UA/1',
    'X-Device-Type': 'mobile',
    'X-Request-Id': 'req-1',
    Referer: 'https://news.example/',
    Cookie: 'session=s3cr3t',
  },
  peerAddress: '203.0.113.77:51234',
  status: 204,
  durationUs: 1234,
  ts: TS,
};

const withConfig = (patch) => ({ ...structuredClone(AD_CONFIG), ...patch });

test('a matching impression GET becomes the expected event, topic and key', () => {
  const r = adtap.previewEvent(AD_CONFIG, IMPRESSION);
  assert.equal(r.matched, true);
  assert.equal(r.reason, undefined);
  assert.equal(r.rule, 0);
  assert.equal(r.eventType, 'impression');
  assert.equal(r.topic, 'ad-impressions');
  assert.equal(r.key, 'c-42', 'top-level key query.campaign_id');
  assert.equal(r.sampleRate, 1);
  assert.deepEqual(r.event, {
    v: 1,
    id: 'preview-0',
    type: 'impression',
    // Default fields do not read the duration: the event's time is the log time, the request's
    // end (it arrived at TS and took 1234 µs).
    ts: TS + 1,
    request_id: 'req-1',
    method: 'GET',
    host: 'Ads.Example.com:443',
    path: '/imp/banner', // query string stripped
    query: { campaign_id: 'c-42', creative_id: 'cr-7' }, // allow-list, `crid` renamed, utm dropped
    headers: { 'x-device-type': 'mobile' }, // allow-listed only, lower-case
    user_agent: 'UA/1',
    referer: 'https://news.example/',
    client_ip: '203.0.113.0', // truncate mode: /24
    status: 204, // the default field; duration_us, sizes, route, upstream are opt-in
  });
  // Field order on the wire is part of the schema's readability: v, id, type, ts first.
  assert.deepEqual(Object.keys(r.event).slice(0, 4), ['v', 'id', 'type', 'ts']);
  assert.ok(!JSON.stringify(r).includes('s3cr3t'), 'a header off the allow-list leaks nowhere');
});

test('the record and the batch requests carry that event in each dialect', () => {
  const r = adtap.previewEvent(AD_CONFIG, IMPRESSION);
  assert.equal(r.record.topic, 'ad-impressions');
  assert.equal(r.record.key, 'c-42');
  assert.deepEqual(JSON.parse(r.record.valueText), r.event);
  assert.equal(Buffer.from(r.record.valueBase64, 'base64').toString('utf8'), r.record.valueText);
  assert.equal(r.record.size, Buffer.from(r.record.valueBase64, 'base64').length + 'c-42'.length);

  const v2 = r.requests.confluent_v2;
  assert.equal(v2.path, '/topics/ad-impressions');
  assert.equal(v2.headers[':method'], 'POST');
  assert.equal(v2.headers[':authority'], 'kafka_rest');
  assert.equal(v2.headers['content-type'], 'application/vnd.kafka.json.v2+json');
  assert.deepEqual(JSON.parse(v2.body), { records: [{ key: 'c-42', value: r.event }] });

  const v3 = r.requests.confluent_v3;
  assert.equal(v3.path, '/v3/clusters/preview-cluster/topics/ad-impressions/records');
  const produce = JSON.parse(v3.body); // one record: one ProduceRequest object
  assert.deepEqual(produce.value, { type: 'JSON', data: r.event });
  assert.deepEqual(produce.key, { type: 'STRING', data: 'c-42' });
  assert.equal(produce.timestamp, new Date(TS + 1).toISOString());

  const rp = r.requests.redpanda;
  assert.equal(rp.path, '/topics/ad-impressions');
  assert.deepEqual(JSON.parse(rp.body), JSON.parse(v2.body));
});

test('v3 uses the configured cluster id and path prefix; credentials are redacted', () => {
  const cfg = withConfig({
    dialect: 'confluent_v3',
    cluster_id: 'lkc-abc123',
    path_prefix: '/kafka',
    auth: { basic: { username: 'APIKEY', password: 'hunter2-secret' } },
  });
  const r = adtap.previewEvent(cfg, IMPRESSION);
  assert.equal(r.requests.confluent_v3.path, '/kafka/v3/clusters/lkc-abc123/topics/ad-impressions/records');
  assert.equal(r.requests.confluent_v2.path, '/kafka/topics/ad-impressions');
  for (const req of Object.values(r.requests)) assert.equal(req.headers.authorization, '<redacted>');
  const all = JSON.stringify(r);
  assert.ok(!all.includes('hunter2-secret') && !all.includes(Buffer.from('APIKEY:hunter2-secret').toString('base64')));
});

test('requests that produce no event say why', () => {
  const post = adtap.previewEvent(AD_CONFIG, { ...IMPRESSION, method: 'POST' });
  assert.deepEqual(post, { matched: false, reason: 'no_rule_matched' });
  const otherHost = adtap.previewEvent(AD_CONFIG, { ...IMPRESSION, host: 'cdn.example.com' });
  assert.deepEqual(otherHost, { matched: false, reason: 'no_rule_matched' });
  const otherPath = adtap.previewEvent(AD_CONFIG, { ...IMPRESSION, path: '/health' });
  assert.equal(otherPath.reason, 'no_rule_matched');

  const never = adtap.previewEvent(AD_CONFIG, { method: 'GET', host: 'x', path: '/never', ts: TS });
  assert.equal(never.matched, false);
  assert.equal(never.reason, 'sampled_out');
  assert.equal(never.rule, 3);
  assert.equal(never.sampleRate, 0);
  assert.equal(never.event, undefined);

  const bad = adtap.previewEvent({ cluster: 'c', rules: [] }, IMPRESSION);
  assert.equal(bad.matched, false);
  assert.equal(bad.reason, 'invalid_config');
  assert.ok(bad.errors.some((e) => e.path === 'rules'), JSON.stringify(bad.errors));
});

test('a sampled rule previews as sampled in and reports its rate; rule keys override', () => {
  const r = adtap.previewEvent(AD_CONFIG, {
    path: '/click?campaign_id=c-1',
    host: 'ads.example.com',
    headers: [['X-Campaign', 'spring'], ['x-campaign', 'ignored-second']],
    ts: TS,
  });
  assert.equal(r.matched, true);
  assert.equal(r.eventType, 'click');
  assert.equal(r.topic, 'ad-clicks');
  assert.equal(r.sampleRate, 0.25);
  assert.equal(r.key, 'spring', 'rule key header.x-campaign wins over the top-level key');
  assert.equal(r.event.method, 'GET', 'method defaults to GET');
});

test('a POST bid captures its body; a long body is cut at body.max_bytes', () => {
  const body = JSON.stringify({ id: 'auction-1', imp: [{ id: '1', banner: { w: 300, h: 250 } }] });
  const req = { method: 'POST', host: 'bids.example.com', path: '/bid', headers: { 'x-request-id': 'rq-9' }, body, ts: TS };
  const r = adtap.previewEvent(AD_CONFIG, req);
  assert.equal(r.eventType, 'bid_request');
  assert.equal(r.topic, 'bid-requests');
  assert.equal(r.key, 'rq-9');
  assert.equal(r.event.body, body);
  assert.equal(r.event.body_truncated, undefined);
  assert.equal(r.event.body_base64, undefined);

  const small = adtap.previewEvent(withConfig({ body: { max_bytes: 10 } }), req);
  assert.equal(small.event.body, body.slice(0, 10));
  assert.equal(small.event.body_truncated, true);

  // A rule without capture_body never carries the body.
  const imp = adtap.previewEvent(AD_CONFIG, { ...IMPRESSION, body: 'ignored' });
  assert.equal(imp.event.body, undefined);
});

test('record bytes decode back to the same event, json and msgpack', () => {
  for (const format of ['json', 'msgpack']) {
    const r = adtap.previewEvent(withConfig({ format }), IMPRESSION);
    assert.equal(r.matched, true);
    const bytes = Buffer.from(r.record.valueBase64, 'base64');
    assert.deepEqual(adtap.decodeRecord(r.record.valueBase64, format), r.event, format);
    assert.deepEqual(adtap.decodeRecord(new Uint8Array(bytes), format), r.event, format);
    if (format === 'msgpack') {
      assert.equal(r.record.valueText, undefined);
      assert.equal(r.requests.confluent_v2.headers['content-type'], 'application/vnd.kafka.binary.v2+json');
      const v2 = JSON.parse(r.requests.confluent_v2.body);
      assert.equal(v2.records[0].value, r.record.valueBase64, 'binary v2 sends the value base64');
      assert.equal(Buffer.from(v2.records[0].key, 'base64').toString(), 'c-42');
    }
  }
});

test('client IP modes and trusted hops come from the configuration', () => {
  const xff = { ...IMPRESSION, headers: { ...IMPRESSION.headers, 'X-Forwarded-For': '198.51.100.9, 192.0.2.1' } };
  const full = adtap.previewEvent(withConfig({ client_ip: { mode: 'full', trusted_hops: 1 } }), xff);
  assert.equal(full.event.client_ip, '192.0.2.1');
  const peer = adtap.previewEvent(withConfig({ client_ip: { mode: 'full' } }), xff);
  assert.equal(peer.event.client_ip, '203.0.113.77');
  const omit = adtap.previewEvent(withConfig({ client_ip: { mode: 'omit' } }), xff);
  assert.equal(omit.event.client_ip, undefined);
});

test('a malformed request throws an Error naming the problem', () => {
  assert.throws(() => adtap.previewEvent(AD_CONFIG, { host: 'x' }), (e) => e instanceof Error && /path/.test(e.message));
  assert.throws(() => adtap.previewEvent(AD_CONFIG, { path: '/i', peerAddr: '1.2.3.4:5' }), /peerAddr/);
  assert.throws(() => adtap.previewEvent(AD_CONFIG, { path: '/i', headers: 'a: b' }), /headers/);
  assert.throws(() => adtap.previewEvent(AD_CONFIG, undefined), /request is missing/);
});
