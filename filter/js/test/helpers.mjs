// Shared by the adtap JS tests: where things are, and the built package.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const JS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(JS_DIR, '../..');
export const DIST = path.join(ROOT, 'dist', 'js');
export const ARTIFACTS = path.join(ROOT, 'dist', 'artifacts');
export const CONFIG_CASES = path.join(ROOT, 'filter', 'core', 'tests', 'config_cases.json');
export const FILTER_RECORDS = path.join(ROOT, 'dist', 'fixtures', 'records');

/** The `--target nodejs` build, as a user's `require('adtap')` gets it. */
export function loadAdtap() {
  const entry = path.join(DIST, 'node', 'adtap.js');
  if (!fs.existsSync(entry)) {
    throw new Error(`${entry} is missing: run filter/js/build-js.sh first (filter/js/test.sh does)`);
  }
  return createRequire(import.meta.url)(DIST);
}

/** A configuration used across the preview tests: impressions, clicks and bids. */
export const AD_CONFIG = {
  cluster: 'kafka_rest',
  format: 'json',
  rules: [
    { event_type: 'impression', topic: 'ad-impressions', method: 'GET', path: { prefix: '/imp' }, host: 'ads.example.com' },
    { event_type: 'click', topic: 'ad-clicks', method: 'GET', path: { exact: '/click' }, sample_rate: 0.25, key: 'header.x-campaign' },
    { event_type: 'bid_request', topic: 'bid-requests', method: 'POST', path: { exact: '/bid' }, capture_body: true, key: 'request_id' },
    { event_type: 'never', topic: 'never', path: { exact: '/never' }, sample_rate: 0 },
  ],
  query_params: ['campaign_id', { name: 'crid', as: 'creative_id' }],
  headers: ['x-device-type', 'X-Campaign'],
  client_ip: { mode: 'truncate' },
  key: 'query.campaign_id',
};
