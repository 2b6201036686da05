// The generated TypeScript declarations describe the API: correct usage compiles, misuse does
// not (typescript's compiler API against dist/js/node/adtap.d.ts).
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import ts from 'typescript';
import { DIST, JS_DIR } from './helpers.mjs';

function diagnostics(file) {
  const program = ts.createProgram([path.join(JS_DIR, 'test', 'types', file)], {
    noEmit: true,
    strict: true,
    target: ts.ScriptTarget.ES2020,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
    // `import … from 'adtap'` resolves to the built package.
    paths: { adtap: [path.join(DIST, 'node', 'adtap.d.ts')] },
    baseUrl: JS_DIR,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

test('correct usage type-checks against the generated .d.ts', () => {
  assert.deepEqual(diagnostics('usage.ts'), []);
});

test('misuse is rejected by the generated .d.ts', () => {
  const errors = diagnostics('bad.ts');
  const lines = errors.map((e) => e.split(' ')[0]);
  assert.ok(lines.includes('bad.ts:4'), `bad format rejected: ${errors.join('\n')}`);
  assert.ok(lines.includes('bad.ts:5'), `missing path rejected: ${errors.join('\n')}`);
  assert.ok(lines.includes('bad.ts:6'), `wrong field type rejected: ${errors.join('\n')}`);
  assert.ok(lines.includes('bad.ts:8'), `unknown deployment rejected: ${errors.join('\n')}`);
});
