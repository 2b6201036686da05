// validateConfig must agree with the filter on every case of the shared table
// filter/core/tests/config_cases.json (the filter's own test, config_table.rs, runs the same
// table through Config::parse): same set of error paths, and each expected message fragment.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { loadAdtap, CONFIG_CASES } from './helpers.mjs';

const adtap = loadAdtap();

/**
 * The document as the case gives it: raw text for malformed ones, else the JSON value. (The Rust
 * side re-serialises `config` with serde_json; JSON.stringify may differ in key order or in
 * writing 1.0 as 1, which changes no case's outcome: the table's own test would show it.)
 */
function input(c) {
  if (typeof c.config_text === 'string') return c.config_text;
  return JSON.stringify(c.config);
}

function mismatches(c) {
  const result = adtap.validateConfig(input(c));
  const problems = [];
  const got = [...new Set(result.errors.map((e) => e.path))].sort();
  const want = [...new Set(c.errors.map((e) => e.path))].sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    problems.push(`paths ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
  for (const { path, contains } of c.errors) {
    if (!result.errors.some((e) => e.path === path && e.message.includes(contains))) {
      problems.push(`no error at \`${path}\` containing ${JSON.stringify(contains)}`);
    }
  }
  if (result.ok !== (c.errors.length === 0)) problems.push(`ok is ${result.ok}`);
  for (const secret of c.secrets ?? []) {
    if (result.errors.some((e) => `${e.path}: ${e.message}`.includes(secret))) {
      problems.push(`an error reveals the secret ${JSON.stringify(secret)}`);
    }
  }
  return problems.length ? `${c.name}: ${problems.join('; ')}; errors: ${JSON.stringify(result.errors)}` : null;
}

test('the shared config table exists and has both outcomes', () => {
  assert.ok(fs.existsSync(CONFIG_CASES), `${CONFIG_CASES} is the contract between JS and the filter`);
  const cases = JSON.parse(fs.readFileSync(CONFIG_CASES, 'utf8'));
  assert.ok(cases.length >= 100, `the table lost cases: ${cases.length}`);
  assert.ok(cases.filter((c) => c.errors.length === 0).length >= 5);
});

test('validateConfig agrees with the filter on every case of config_cases.json', async (t) => {
  const cases = JSON.parse(fs.readFileSync(CONFIG_CASES, 'utf8'));
  const failures = [];
  for (const c of cases) {
    // One sub-test per case, so a failure names its case in the report.
    await t.test(c.name, () => {
      const problem = mismatches(c);
      if (problem) failures.push(problem);
      assert.equal(problem, null);
    });
  }
  assert.equal(failures.length, 0, failures.join('\n'));
});

test('validateConfig takes a string or an object and reports every error at once', () => {
  const good = {
    cluster: 'kafka_rest',
    rules: [{ event_type: 'impression', topic: 'ad-impressions', path: { exact: '/i' } }],
  };
  assert.deepEqual(adtap.validateConfig(good), { ok: true, errors: [] });
  assert.deepEqual(adtap.validateConfig(JSON.stringify(good)), { ok: true, errors: [] });

  const bad = structuredClone(good);
  bad.rules[0].sample_rate = 2;
  bad.batch = { max_events: 0 };
  const r = adtap.validateConfig(bad);
  assert.equal(r.ok, false);
  assert.deepEqual(r.errors.map((e) => e.path).sort(), ['batch.max_events', 'rules[0].sample_rate']);
  for (const e of r.errors) assert.equal(typeof e.message, 'string');

  const syntax = adtap.validateConfig('{"cluster": ');
  assert.equal(syntax.ok, false);
  assert.equal(syntax.errors.length, 1);
  // A malformed document is one error (serde stops there), never an exception.
  assert.ok(syntax.errors[0].message.length > 0);

  assert.throws(() => adtap.validateConfig(undefined), { message: /config is missing/ });
});
