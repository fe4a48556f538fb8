#!/usr/bin/env node
// The end-to-end benchmark's TypeScript peer: the official TypeScript SDK's
// Streamable HTTP server in its documented stateful pattern — a map of
// transports keyed by session id, a new transport and McpServer per
// `initialize`, the entry removed when the transport closes — with no cap
// and no idle timeout (the SDK has neither). Tools `echo` and a per-session
// `counter`; `GET /stats` gives `{"live": N}` (the map's size).
//
// node ts-stateful.mjs --port N ; prints `listening on http://127.0.0.1:N/mcp`.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod/v4';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const transports = {};

function buildServer() {
  const server = new McpServer({ name: 'e2e-ts-peer', version: '0.0.0' });
  let count = 0;
  server.registerTool(
    'echo',
    { description: 'Returns its text', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  server.registerTool('counter', { description: 'A per-session counter' }, async () => {
    count += 1;
    return { content: [{ type: 'text', text: String(count) }] };
  });
  return server;
}

function badRequest(res, message) {
  res.writeHead(400, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/stats') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ live: Object.keys(transports).length }));
    return;
  }
  if (url.pathname !== '/mcp') {
    res.writeHead(404).end();
    return;
  }
  const sessionId = req.headers['mcp-session-id'];
  if (req.method === 'POST') {
    const body = await readJson(req);
    let transport;
    if (sessionId && transports[sessionId]) {
      transport = transports[sessionId];
    } else if (!sessionId && isInitializeRequest(body)) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          transports[id] = transport;
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) delete transports[transport.sessionId];
      };
      await buildServer().connect(transport);
    } else {
      return badRequest(res, 'Bad Request: No valid session ID provided');
    }
    await transport.handleRequest(req, res, body);
    return;
  }
  // GET (SSE stream) and DELETE.
  if (!sessionId || !transports[sessionId]) return badRequest(res, 'Invalid or missing session ID');
  await transports[sessionId].handleRequest(req, res);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) res.writeHead(500).end();
  });
});
server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/mcp`);
});
