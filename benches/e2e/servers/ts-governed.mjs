#!/usr/bin/env node
// The TypeScript SDK server governed by this crate's Node binding
// (ffi/node/examples/mcp-server.mjs, unchanged) plus `GET /stats`
// (`{"live": N}`, the core registry's length) on a second port, for the
// end-to-end benchmark.
//
// node ts-governed.mjs --port N --stats-port M --max-sessions K --idle-timeout-ms T
// prints `listening on http://127.0.0.1:N/mcp` and `stats at http://127.0.0.1:M/stats`.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { startServer } from '../../../ffi/node/examples/mcp-server.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'stats-port': { type: 'string' },
    'max-sessions': { type: 'string' },
    'on-full': { type: 'string' },
    'idle-timeout-ms': { type: 'string' },
  },
});
const running = await startServer({
  port: Number(values.port ?? 0),
  maxSessions: Number(values['max-sessions'] ?? 1000),
  onFull: values['on-full'] ?? 'evict',
  idleTimeoutMs: Number(values['idle-timeout-ms'] ?? 1_800_000),
});
const stats = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ live: running.registry.freed ? 0 : running.registry.len }));
});
stats.listen(Number(values['stats-port'] ?? 0), '127.0.0.1', () => {
  console.log(`listening on ${running.url}`);
  console.log(`stats at http://127.0.0.1:${stats.address().port}/stats`);
});
const stop = () => running.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
