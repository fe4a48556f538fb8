// The declarations (index.d.ts) list what the runtime has: the ErrorCode and
// CloseReason objects, the stats fields and the exports. (test/types/usage.ts,
// compiled by `tsc --noEmit` in test.sh, checks the types' shapes.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as mod from '../index.js';

const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');

/** The `KEY: 'value'` pairs of a `Readonly<{ ... }>` declaration. */
function declaredObject(name) {
  const m = dts.match(new RegExp(`export declare const ${name}: Readonly<\\{([\\s\\S]*?)\\}>;`));
  assert.ok(m, `${name} not declared`);
  return Object.fromEntries([...m[1].matchAll(/^\s*(\w+): '([^']*)';/gm)].map((x) => [x[1], x[2]]));
}

test('ErrorCode and CloseReason: declared = runtime', () => {
  assert.deepEqual(declaredObject('ErrorCode'), { ...mod.ErrorCode });
  assert.deepEqual(declaredObject('CloseReason'), { ...mod.CloseReason });
});

test('every status number maps to a declared code; unknown reasons have the declared form', () => {
  const codes = new Set(Object.values(mod.ErrorCode));
  for (let status = 1; status < 12; status++) assert.ok(codes.has(mod.errorFromStatus(status).code), `status ${status}`);
  assert.equal(mod.errorFromStatus(0), null);
  assert.match(dts, /`unknown\(\$\{number\}\)`/);
});

test('stats(): declared fields = runtime fields', () => {
  const m = dts.match(/export interface RegistryStats \{([\s\S]*?)\n\}/);
  const declared = [...m[1].matchAll(/^\s*(\w+): number;/gm)].map((x) => x[1]).sort();
  const r = new mod.SessionRegistry();
  try {
    assert.deepEqual(Object.keys(r.stats()).sort(), declared);
  } finally {
    r.free();
  }
});

test('every runtime export is declared', () => {
  for (const name of Object.keys(mod)) {
    assert.match(dts, new RegExp(`export declare (const|function|class) ${name}\\b`), name);
  }
});
