// A user's program: run by ffi/node/test.sh in a temporary project where
// mcp-session-core and its per-platform package were installed from their
// `npm pack` tarballs, with MCP_SESSION_CORE_LIB unset.
import assert from 'node:assert/strict';
import { SessionRegistry, libraryPath, platformPackageName, version } from 'mcp-session-core';

assert.equal(process.env.MCP_SESSION_CORE_LIB, undefined);
const lib = libraryPath();
assert.ok(
  lib.includes(`node_modules/${platformPackageName()}/`),
  `the library must come from the per-platform package, not ${lib}`,
);
const closed = [];
const registry = new SessionRegistry({ maxSessions: 2, onClose: (ev) => closed.push(ev.reason) });
const id = registry.create({ transport: 't' }, 'alice');
assert.deepEqual(registry.get(id, 'alice'), { transport: 't' });
registry.close(id);
assert.deepEqual(closed, ['closed']);
registry.free();
console.log(`ok: mcp-session-core ${version()} from ${lib}`);
