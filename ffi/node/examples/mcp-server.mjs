#!/usr/bin/env node
// An MCP server (official TypeScript SDK, Streamable HTTP, plain node:http)
// whose sessions are governed by mcp-session-core:
//
// - the session id comes from the core: an `initialize` creates a core
//   session first (503/429 with Retry-After when the core refuses), and the
//   transport's `sessionIdGenerator` hands out that id;
// - every request carrying `Mcp-Session-Id` is validated by `registry.get`
//   before the SDK sees it (400 malformed, 404 unknown/closed/evicted/
//   expired/other principal's); a non-initialize request without it is 400;
// - `notifications/initialized` confirms the session (init timeout);
// - DELETE closes the session through the core;
// - a sweep (every `sweepIntervalMs`, and right after each create) purges
//   expired sessions, drains the core's close events and closes the
//   transport of every session that left (evicted, expired, closed).
//
// "Idle" means no request for `idleTimeoutMs`: each request's `get` refreshes
// the session, but an open GET (SSE) stream alone does not keep it alive.
//
// Why not create the core session inside `sessionIdGenerator`: the SDK calls
// it in the middle of handling the POST and turns anything it throws into a
// "400 Parse error", so a refused create could never be answered 503/429.
// Creating first and letting the generator return that id keeps the core as
// the only source of ids and gives the right status codes.
//
// Run:  node examples/mcp-server.mjs --port 3000 --max-sessions 100 \
//         --on-full evict --idle-timeout-ms 600000
// (or env MCP_PORT / PORT, MCP_MAX_SESSIONS, MCP_ON_FULL, MCP_IDLE_TIMEOUT_MS,
//  MCP_INIT_TIMEOUT_MS, MCP_MAX_LIFETIME_MS).

import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod/v4';
import { SessionError, SessionRegistry } from '../index.js';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

function jsonRpcError(res, httpStatus, code, message, headers = {}) {
  if (res.headersSent) return;
  res.writeHead(httpStatus, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function sessionErrorResponse(res, err) {
  const headers = {};
  if (err.retryAfterSeconds !== undefined) headers['Retry-After'] = String(err.retryAfterSeconds);
  // -32001 is what the SDK itself answers for an unknown session.
  const rpcCode = err.httpStatus === 404 ? -32001 : -32000;
  jsonRpcError(res, err.httpStatus, rpcCode, err.message, headers);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { tooLarge: true };
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { body: JSON.parse(text) };
  } catch {
    return { invalid: true };
  }
}

function isInitialize(body) {
  return Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body);
}

/** The MCP server of one session: tools `echo` and `counter`. */
function buildMcpServer(session) {
  const server = new McpServer({ name: 'mcp-session-core-example', version: '0.1.0' });
  server.registerTool(
    'echo',
    { description: 'Returns its text', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  server.registerTool(
    'counter',
    { description: 'Increments and returns a per-session counter' },
    async () => {
      session.counter += 1;
      return { content: [{ type: 'text', text: String(session.counter) }] };
    },
  );
  return server;
}

/**
 * Starts the server.
 * @param {object} [opts]
 * @param {number} [opts.port=3000] 0 picks a free port
 * @param {string} [opts.host='127.0.0.1']
 * @param {number} [opts.maxSessions=1000]
 * @param {'evict'|'reject'} [opts.onFull='evict']
 * @param {number} [opts.idleTimeoutMs=1800000] 0 = off
 * @param {number} [opts.initTimeoutMs=30000] 0 = off
 * @param {number} [opts.maxLifetimeMs=0] 0 = off
 * @param {{max:number, windowMs:number}} [opts.rateLimit]
 * @param {number} [opts.sweepIntervalMs=200]
 * @param {(req: http.IncomingMessage) => string | Buffer | undefined} [opts.principal]
 *   the caller's identity (e.g. from an auth token); sessions are bound to it
 * @param {(msg: string) => void} [opts.log]
 */
export async function startServer(opts = {}) {
  const log = opts.log ?? (() => {});
  const registry = new SessionRegistry({
    maxSessions: opts.maxSessions ?? 1000,
    onFull: opts.onFull ?? 'evict',
    idleTimeoutMs: opts.idleTimeoutMs ?? 30 * 60_000,
    initTimeoutMs: opts.initTimeoutMs ?? 30_000,
    maxLifetimeMs: opts.maxLifetimeMs ?? 0,
    rateLimit: opts.rateLimit,
  });
  const principalOf = opts.principal ?? (() => undefined);

  /** Tears down the transport of every session the core reports closed. */
  function sweep() {
    if (registry.freed) return;
    registry.purgeExpired();
    for (const { id, value: session, reason } of registry.drainClosed()) {
      log(`session ${id} closed: ${reason}`);
      session.closed = true;
      session.transport.close().catch(() => {});
    }
  }
  const timer = setInterval(sweep, opts.sweepIntervalMs ?? 200);
  timer.unref();

  function closeInCore(id) {
    try {
      registry.close(id);
    } catch (err) {
      if (!(err instanceof SessionError)) throw err; // NOT_FOUND: already gone
    }
  }

  async function initialize(req, res, body, principal) {
    const session = { id: undefined, counter: 0, closed: false, transport: undefined };
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => session.id, // minted by the core below
      onsessionclosed: (id) => {
        // DELETE, after the SDK validated it: close through the core.
        closeInCore(id);
        sweep();
      },
    });
    session.transport = transport;
    const server = buildMcpServer(session);
    server.server.oninitialized = () => {
      try {
        registry.confirm(session.id);
      } catch (err) {
        if (!(err instanceof SessionError)) throw err; // evicted meanwhile
      }
    };
    // The transport closed on its own (or by us): make sure the core agrees.
    transport.onclose = () => {
      if (session.id !== undefined && !session.closed) closeInCore(session.id);
    };
    try {
      session.id = registry.create(session, principal);
    } catch (err) {
      if (err instanceof SessionError) return sessionErrorResponse(res, err);
      throw err;
    }
    log(`session ${session.id} created`);
    sweep(); // an eviction to make room: close that transport now
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    } finally {
      if (transport.sessionId === undefined) {
        // The SDK refused the request before minting (bad headers...) or
        // failed: the id was never handed out, give its slot back.
        closeInCore(session.id);
        sweep();
      }
    }
  }

  async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/mcp') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
      return;
    }
    if (!['POST', 'GET', 'DELETE'].includes(req.method)) {
      res.writeHead(405, { Allow: 'GET, POST, DELETE' }).end();
      return;
    }
    const principal = principalOf(req);
    const sessionId = req.headers['mcp-session-id'];

    let session;
    if (sessionId !== undefined) {
      // Validate before anything runs (and before reading the body).
      try {
        session = registry.get(sessionId, principal);
      } catch (err) {
        if (err instanceof SessionError) return sessionErrorResponse(res, err);
        throw err;
      }
    }

    let body;
    if (req.method === 'POST') {
      const parsed = await readBody(req);
      if (parsed.tooLarge) return jsonRpcError(res, 413, -32000, 'Request body too large');
      if (parsed.invalid) return jsonRpcError(res, 400, -32700, 'Parse error: Invalid JSON');
      body = parsed.body;
    }

    if (session === undefined) {
      if (req.method === 'POST' && isInitialize(body)) return initialize(req, res, body, principal);
      return jsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    }
    await session.transport.handleRequest(req, res, body);
  }

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      log(`error: ${err?.stack ?? err}`);
      jsonRpcError(res, 500, -32603, 'Internal server error');
    });
  });
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port ?? 3000, opts.host ?? '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address();
  const host = opts.host ?? '127.0.0.1';

  let closing;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`,
    registry,
    /** Runs one sweep now (tests use it instead of waiting for the timer). */
    sweep,
    async close() {
      closing ??= (async () => {
        clearInterval(timer);
        sweep();
        const left = registry.free();
        await Promise.allSettled(left.map(({ value }) => value.transport.close()));
        httpServer.closeAllConnections();
        await new Promise((resolve) => httpServer.close(() => resolve()));
      })();
      return closing;
    },
  };
}

function envInt(name) {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : Number(v);
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'max-sessions': { type: 'string' },
      'on-full': { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
      'init-timeout-ms': { type: 'string' },
      'max-lifetime-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      'usage: mcp-server.mjs [--port N] [--host H] [--max-sessions N] [--on-full evict|reject]\n' +
        '                      [--idle-timeout-ms N] [--init-timeout-ms N] [--max-lifetime-ms N]',
    );
    return;
  }
  const num = (flag, env) => (flag !== undefined ? Number(flag) : envInt(env));
  const running = await startServer({
    port: num(values.port, 'MCP_PORT') ?? envInt('PORT') ?? 3000,
    host: values.host ?? process.env.MCP_HOST,
    maxSessions: num(values['max-sessions'], 'MCP_MAX_SESSIONS'),
    onFull: values['on-full'] ?? process.env.MCP_ON_FULL,
    idleTimeoutMs: num(values['idle-timeout-ms'], 'MCP_IDLE_TIMEOUT_MS'),
    initTimeoutMs: num(values['init-timeout-ms'], 'MCP_INIT_TIMEOUT_MS'),
    maxLifetimeMs: num(values['max-lifetime-ms'], 'MCP_MAX_LIFETIME_MS'),
    log: (m) => console.error(m),
  });
  console.error(`MCP server listening on ${running.url}`);
  const stop = () => running.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
