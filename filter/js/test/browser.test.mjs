// The page in a real headless browser (Debian's chromium via playwright-core), served over http
// from dist/js like a person would open it: a bad config shows its error with the path, a
// sample request shows its event (and its CloudEvents form), a pasted record is decoded, the
// event schema is listed. Screenshots:
// dist/artifacts/js-page.png (bad config + decoded record), js-page-preview.png (an event preview),
// js-page-cloudevents.png (a v3 record's CloudEvents headers).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';
import { DIST, ARTIFACTS, loadAdtap, AD_CONFIG } from './helpers.mjs';

const CHROMIUM = process.env.ADTAP_CHROMIUM ?? '/usr/bin/chromium';

test('the page validates, previews and decodes in headless chromium', async (t) => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: filter/js/test.sh installs Debian's chromium`);
  assert.ok(fs.existsSync(path.join(DIST, 'page', 'index.html')), 'run filter/js/build-js.sh first');

  const server = await serve(DIST);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'adtap-chromium-'));
  let context = null;
  // One hook, in order: the browser must be gone before its profile is removed.
  t.after(async () => {
    await context?.close();
    await server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });

  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  // Only the local server may be reached.
  await page.route('**/*', (route) =>
    route.request().url().startsWith(server.url) ? route.continue() : route.abort());

  await page.goto(`${server.url}/page/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  assert.match(await page.textContent('#config-status'), /Valid configuration/);

  // 1. A bad configuration: every error listed with its path.
  const bad = structuredClone(AD_CONFIG);
  bad.rules[1].sample_rate = 1.5;
  bad.batch = { max_events: 0 };
  await page.fill('#config', JSON.stringify(bad, null, 2));
  await page.waitForSelector('#config-status.bad');
  const expected = loadAdtap().validateConfig(bad).errors;
  assert.ok(expected.length >= 2);
  const shown = await page.$$eval('#config-errors li', (lis) => lis.map((li) => ({
    path: li.querySelector('.path').textContent,
    message: li.querySelector('.message').textContent,
  })));
  assert.deepEqual(shown, expected, 'the page lists exactly what validateConfig returns');
  assert.ok(shown.some((e) => e.path === 'rules[1].sample_rate'));
  assert.ok(shown.some((e) => e.path === 'batch.max_events'));
  assert.match(await page.textContent('#preview-summary'), /Fix the configuration/);

  // 2. Back to a valid configuration: the sample request previews to an event.
  await page.fill('#config', JSON.stringify(AD_CONFIG, null, 2));
  await page.waitForSelector('#config-status.ok');
  await page.fill('#req-host', 'ads.example.com');
  await page.fill('#req-path', '/imp/top?campaign_id=c-77&crid=cr-1');
  await page.fill('#req-headers', 'User-Agent: Browser/1\nX-Device-Type: tv');
  await page.waitForSelector('#preview-summary.ok');
  const event = JSON.parse(await page.textContent('#preview-event'));
  assert.equal(event.type, 'impression');
  assert.deepEqual(event.query, { campaign_id: 'c-77', creative_id: 'cr-1' });
  assert.deepEqual(event.headers, { 'x-device-type': 'tv' });
  const summary = await page.textContent('#preview-summary');
  assert.match(summary, /ad-impressions/);
  assert.match(summary, /c-77/);
  assert.match(await page.textContent('#req-v2'), /"records"/);

  // "Decode this record below" hands the previewed record to panel 3.
  await page.click('#panel-preview summary:has-text("Confluent v2 request")');
  await page.click('#record-use');
  await page.waitForSelector('#record-status.ok');
  assert.equal(await page.inputValue('#record-format'), 'json');
  assert.deepEqual(JSON.parse(await page.textContent('#record-output')), event);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'js-page-preview.png'), fullPage: true });

  // A request no rule matches says so, and shows no stale event.
  await page.fill('#req-path', '/health');
  await page.waitForFunction(() => /No rule matches/.test(document.querySelector('#preview-summary').textContent));
  assert.equal(await page.isVisible('#preview-event'), false);
  await page.fill('#req-path', '/imp/top?campaign_id=c-77&crid=cr-1');
  await page.waitForSelector('#preview-summary.ok');

  // 3. Paste a record (msgpack, base64) and see its fields.
  const rec = loadAdtap().previewEvent({ ...AD_CONFIG, format: 'msgpack' }, {
    host: 'ads.example.com', path: '/imp/side?campaign_id=c-501', peerAddress: '198.51.100.23:4000',
    status: 200, ts: 1_700_000_000_000,
  });
  await page.selectOption('#record-format', 'msgpack');
  await page.fill('#record-input', rec.record.valueBase64);
  await page.waitForSelector('#record-status.ok');
  const decoded = JSON.parse(await page.textContent('#record-output'));
  assert.deepEqual(decoded, rec.event);
  assert.equal(await page.textContent('dd[data-field="type"]'), 'impression');
  assert.equal(await page.textContent('dd[data-field="client_ip"]'), '198.51.100.0');
  assert.match(await page.textContent('dd[data-field="query"]'), /campaign_id=c-501/);

  // A broken record shows the error instead.
  await page.fill('#record-input', 'definitely not base64 @@');
  await page.waitForSelector('#record-status.bad');
  assert.match(await page.textContent('#record-status'), /not valid base64/);
  await page.fill('#record-input', rec.record.valueBase64);
  await page.waitForSelector('#record-status.ok');

  // 4. CloudEvents: binary mode on v3 (ce_* record headers, then the configured record headers),
  // structured mode on v2 (the envelope as the value), each as the core builds the record.
  const ce = {
    ...AD_CONFIG, dialect: 'confluent_v3', cluster_id: 'lkc-1',
    cloudevents: { source: '/adtap/page-test' }, record_headers: ['traceparent'],
  };
  await page.fill('#req-path', '/imp/top?campaign_id=c-77&crid=cr-1');
  await page.fill('#req-headers', 'User-Agent: Browser/1\ntraceparent: 00-4bf92f-01');
  await page.fill('#config', JSON.stringify(ce, null, 2));
  await page.waitForSelector('#preview-ce-mode[data-mode="binary"]');
  const headers = await page.$$eval('#preview-headers dd', (dds) => dds.map((d) => [d.dataset.header, d.textContent]));
  assert.deepEqual(headers.map(([n]) => n), ['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_time', 'ce_dataschema', 'traceparent']);
  assert.deepEqual(Object.fromEntries(headers).ce_id, 'preview-0');
  assert.deepEqual(Object.fromEntries(headers).ce_source, '/adtap/page-test');
  assert.deepEqual(Object.fromEntries(headers).ce_type, 'adtap.impression');
  assert.deepEqual(Object.fromEntries(headers).traceparent, '00-4bf92f-01');
  assert.match(await page.textContent('#req-v3'), /"ce_id"/);
  const v3Event = JSON.parse(await page.textContent('#preview-event'));
  assert.equal(v3Event.id, 'preview-0');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'js-page-cloudevents.png'), fullPage: true });

  const { dialect: _d, cluster_id: _c, record_headers: _r, ...v2ce } = ce;
  await page.fill('#config', JSON.stringify({ ...v2ce, format: 'msgpack' }, null, 2));
  await page.waitForSelector('#preview-ce-mode[data-mode="structured"]');
  assert.equal(await page.isVisible('#preview-headers-block'), false, 'v2 has no record headers');
  const envelope = JSON.parse(await page.textContent('#preview-record'));
  assert.equal(envelope.specversion, '1.0');
  assert.equal(envelope.id, 'preview-0');
  assert.equal(envelope.datacontenttype, 'application/msgpack');
  const v2Event = JSON.parse(await page.textContent('#preview-event'));
  assert.deepEqual(loadAdtap().decodeRecord(envelope.data_base64, 'msgpack'), v2Event);
  // The envelope handed to the decoder opens to the event, in the configured format.
  await page.click('#record-use');
  await page.waitForFunction(() => /msgpack record/.test(document.querySelector('#record-status').textContent));
  assert.equal(await page.inputValue('#record-format'), 'msgpack');
  assert.deepEqual(JSON.parse(await page.textContent('#record-output')), v2Event);

  // 5. The schema: every property listed, the JSON and the download are the core's schema.
  const schemaText = loadAdtap().eventSchema();
  const schema = JSON.parse(schemaText);
  assert.equal(await page.textContent('#schema-id'), 'urn:adtap:event:v1');
  const fields = await page.$$eval('#schema-fields tbody tr', (trs) => trs.map((tr) => tr.dataset.field));
  assert.deepEqual(fields, Object.keys(schema.properties));
  assert.equal(await page.textContent('#schema-fields tr[data-field="v"] td:first-child'), 'v *');
  assert.match(await page.textContent('#schema-fields tr[data-field="query"] td:nth-child(3)'), /max entries 64/);
  assert.equal(await page.textContent('#schema-json'), schemaText);
  const downloaded = await page.evaluate(async () => (await fetch(document.querySelector('#schema-download').href)).text());
  assert.equal(downloaded, schemaText);

  // Keep the bad-config state in the screenshot too: it is the page's main job.
  await page.fill('#config', JSON.stringify(bad, null, 2));
  await page.waitForSelector('#config-status.bad');
  const shot = path.join(ARTIFACTS, 'js-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`# screenshot: ${shot}`);
  assert.ok(fs.statSync(shot).size > 10_000);
  assert.deepEqual(problems, []);
});
