// The example MCP server, driven by the SDK's own Client over Streamable
// HTTP, plus raw fetches for the HTTP mapping (DESIGN.md).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startServer } from '../examples/mcp-server.mjs';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MCP_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

const servers = [];
const clients = [];
after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(servers.map((s) => s.close()));
});

async function server(opts = {}) {
  const events = [];
  const s = await startServer({
    port: 0,
    sweepIntervalMs: 50,
    log: (m) => events.push(m),
    ...opts,
  });
  s.events = events;
  servers.push(s);
  return s;
}

async function connect(url, headers) {
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), headers ? { requestInit: { headers } } : {});
  client.onerror = () => {}; // the GET stream of an evicted session fails: expected
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

async function callText(client, name, args = {}) {
  const result = await client.callTool({ name, arguments: args });
  assert.equal(result.isError ?? false, false, JSON.stringify(result));
  return result.content[0].text;
}

async function rejectsWithStatus(promise, status) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, status, `${err.name}: ${err.message}`);
    return true;
  });
}

function rpc(method, params = {}, id = 1) {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params });
}

const INIT_BODY = rpc('initialize', {
  protocolVersion: '2025-03-26',
  capabilities: {},
  clientInfo: { name: 'raw', version: '0' },
});

/** A raw initialize; returns the response (body consumed) and its session id. */
async function rawInitialize(url, headers = {}) {
  const res = await fetch(url, { method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: INIT_BODY });
  await res.text();
  return { res, id: res.headers.get('mcp-session-id') };
}

async function rawPost(url, sessionId, body = rpc('tools/list'), headers = {}) {
  const h = { ...MCP_HEADERS, ...headers };
  if (sessionId !== undefined) h['Mcp-Session-Id'] = sessionId;
  const res = await fetch(url, { method: 'POST', headers: h, body });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}

describe('MCP server on the core', () => {
  test('initialize, list tools, echo and counter', async () => {
    const s = await server();
    const { client, transport } = await connect(s.url);
    assert.match(transport.sessionId, UUID_V4, 'the id is minted by the core');
    assert.equal(s.registry.len, 1);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['counter', 'echo']);
    assert.equal(await callText(client, 'echo', { text: 'hello' }), 'hello');
    assert.equal(await callText(client, 'counter'), '1');
    assert.equal(await callText(client, 'counter'), '2');
    assert.equal(await callText(client, 'counter'), '3');
  });

  test('two clients: distinct ids, independent counters', async () => {
    const s = await server();
    const a = await connect(s.url);
    const b = await connect(s.url);
    assert.notEqual(a.transport.sessionId, b.transport.sessionId);
    assert.equal(await callText(a.client, 'counter'), '1');
    assert.equal(await callText(a.client, 'counter'), '2');
    assert.equal(await callText(b.client, 'counter'), '1');
    assert.equal(await callText(a.client, 'counter'), '3');
    assert.equal(s.registry.len, 2);
  });

  test('maxSessions 2: a third client evicts the first, which gets 404 and can re-initialize', async () => {
    const s = await server({ maxSessions: 2 });
    const a = await connect(s.url);
    const b = await connect(s.url);
    const oldA = a.transport.sessionId;
    assert.equal(await callText(a.client, 'counter'), '1');
    const c = await connect(s.url);
    assert.equal(s.registry.len, 2);
    assert.ok(
      s.events.includes(`session ${oldA} closed: evicted`),
      `the sweep tore down the evicted transport: ${s.events}`,
    );
    await rejectsWithStatus(callText(a.client, 'echo', { text: 'x' }), 404);
    assert.equal(await callText(b.client, 'echo', { text: 'b' }), 'b');
    assert.equal(await callText(c.client, 'counter'), '1');

    // The evicted client re-initializes (a new transport on the same Client).
    await a.client.close();
    const transport = new StreamableHTTPClientTransport(new URL(s.url));
    await a.client.connect(transport);
    assert.notEqual(transport.sessionId, oldA);
    assert.equal(await callText(a.client, 'counter'), '1', 'a new session starts a new counter');
    // ... which evicted the oldest remaining session, b.
    await rejectsWithStatus(callText(b.client, 'echo', { text: 'x' }), 404);
    assert.equal(await callText(c.client, 'counter'), '2');
    assert.equal(s.registry.len, 2);
  });

  test('HTTP mapping: missing id 400, malformed id 400, unknown id 404', async () => {
    const s = await server();
    await connect(s.url); // a live session that must not be reachable by accident

    const missing = await rawPost(s.url, undefined);
    assert.equal(missing.status, 400);
    assert.match(missing.text, /Mcp-Session-Id header is required/);

    for (const bad of ['abc', 'ABCDEF00-0000-4000-8000-000000000000', `${UNKNOWN_ID}0`, '1700000000000']) {
      const malformed = await rawPost(s.url, bad);
      assert.equal(malformed.status, 400, bad);
      assert.match(malformed.text, /malformed session id/);
    }

    const unknown = await rawPost(s.url, UNKNOWN_ID);
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.text).error.code, -32001);

    const get = await fetch(s.url, { headers: { Accept: 'text/event-stream' } });
    assert.equal(get.status, 400);
    await get.text();
    const del = await fetch(s.url, { method: 'DELETE' });
    assert.equal(del.status, 400);
    await del.text();
    const delUnknown = await fetch(s.url, { method: 'DELETE', headers: { 'Mcp-Session-Id': UNKNOWN_ID } });
    assert.equal(delUnknown.status, 404);
    await delUnknown.text();
  });

  test('DELETE closes the session through the core, then 404', async () => {
    const s = await server();
    const { client, transport } = await connect(s.url);
    const id = transport.sessionId;
    assert.equal(await callText(client, 'counter'), '1');
    await transport.terminateSession(); // DELETE
    assert.equal(s.registry.len, 0);
    assert.ok(s.events.includes(`session ${id} closed: closed`), String(s.events));
    const after = await rawPost(s.url, id);
    assert.equal(after.status, 404);
    const del = await fetch(s.url, { method: 'DELETE', headers: { 'Mcp-Session-Id': id } });
    assert.equal(del.status, 404);
    await del.text();
    assert.equal(s.registry.heldValues, 0);
  });

  test('reject at capacity: 503 with Retry-After', async () => {
    const s = await server({ maxSessions: 1, onFull: 'reject' });
    const { client } = await connect(s.url);
    const { res, id } = await rawInitialize(s.url);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(id, null);
    assert.equal(await callText(client, 'echo', { text: 'still here' }), 'still here');
    assert.equal(s.registry.stats().rejectedFull, 1);
  });

  test('rate limited: 429 with Retry-After', async () => {
    const s = await server({ rateLimit: { max: 1, windowMs: 60_000 } });
    const first = await rawInitialize(s.url);
    assert.equal(first.res.status, 200);
    assert.match(first.id, UUID_V4);
    const second = await rawInitialize(s.url);
    assert.equal(second.res.status, 429);
    const retry = Number(second.res.headers.get('retry-after'));
    // Never short: the window plus up to two clock ticks, rounded up.
    assert.ok(retry >= 1 && retry <= 61, `Retry-After ${retry}`);
    assert.equal(s.registry.len, 1);
  });

  test('sessions are bound to the principal that created them', async () => {
    const s = await server({ principal: (req) => req.headers['x-principal'] });
    const { res, id } = await rawInitialize(s.url, { 'X-Principal': 'alice' });
    assert.equal(res.status, 200);
    assert.equal((await rawPost(s.url, id, undefined, { 'X-Principal': 'bob' })).status, 404);
    assert.equal((await rawPost(s.url, id)).status, 404, 'no principal');
    assert.equal((await rawPost(s.url, id, undefined, { 'X-Principal': 'alice' })).status, 200);
    // The SDK client, as alice, works end to end.
    const { client } = await connect(s.url, { 'X-Principal': 'alice' });
    assert.equal(await callText(client, 'echo', { text: 'hi' }), 'hi');
  });

  test('idle sessions expire and their transports are torn down', async () => {
    const s = await server({ idleTimeoutMs: 150 });
    const { client, transport } = await connect(s.url);
    const id = transport.sessionId;
    assert.equal(await callText(client, 'echo', { text: 'x' }), 'x');
    await sleep(400);
    await rejectsWithStatus(callText(client, 'echo', { text: 'x' }), 404);
    assert.ok(s.events.includes(`session ${id} closed: idle_timeout`), String(s.events));
    assert.equal(s.registry.len, 0);
  });

  test('an initialize never completed is reclaimed by the init timeout', async () => {
    const s = await server({ initTimeoutMs: 150, idleTimeoutMs: 0 });
    const { id: halfOpen } = await rawInitialize(s.url); // no notifications/initialized
    const { client, transport } = await connect(s.url); // confirms
    await sleep(400);
    assert.ok(s.events.includes(`session ${halfOpen} closed: init_timeout`), String(s.events));
    assert.equal((await rawPost(s.url, halfOpen)).status, 404);
    assert.equal(await callText(client, 'echo', { text: 'ok' }), 'ok');
    assert.equal(s.registry.len, 1);
    assert.ok(!s.events.some((e) => e.startsWith(`session ${transport.sessionId} closed`)));
  });

  test('an initialize the SDK refuses (406) gives its core slot back', async () => {
    const s = await server({ maxSessions: 1, onFull: 'reject' });
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: INIT_BODY,
    });
    assert.equal(res.status, 406);
    assert.equal(res.headers.get('mcp-session-id'), null);
    await res.text();
    assert.equal(s.registry.len, 0);
    assert.equal(s.registry.heldValues, 0);
    const { client } = await connect(s.url); // the only slot is free again
    assert.equal(await callText(client, 'counter'), '1');
  });

  test('close() releases every session value', async () => {
    const s = await server();
    await connect(s.url);
    await connect(s.url);
    const registry = s.registry;
    await s.close();
    assert.equal(registry.freed, true);
    assert.equal(registry.heldValues, 0);
  });
});
