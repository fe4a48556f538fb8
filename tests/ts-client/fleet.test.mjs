// Fleet mode with the official MCP TypeScript SDK's client: two instances
// of the mcp-server crate (server/src/main.rs) (`--redis URL --max-sessions 3`) share one
// Redis. test.sh starts them and sets MCP_URL_A and MCP_URL_B.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const A = process.env.MCP_URL_A;
const B = process.env.MCP_URL_B;
assert.ok(A && B, "MCP_URL_A / MCP_URL_B are not set: run test.sh");

async function connect(url, sessionId) {
  const transport = new StreamableHTTPClientTransport(new URL(url), sessionId ? { sessionId } : undefined);
  const client = new Client({ name: "ts-sdk-fleet-test", version: "0.0.0" });
  // With a session id the SDK skips `initialize`: it continues that session.
  await client.connect(transport);
  return { client, transport };
}

function text(result) {
  assert.equal(result.isError ?? false, false, JSON.stringify(result));
  return result.content[0].text;
}

const counter = async (client) => Number(text(await client.callTool({ name: "counter", arguments: {} })));

async function status(url, sessionId) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-06-18",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
  });
  await response.arrayBuffer();
  return response.status;
}

test("initialized on A, continued on B, evicted through B, 404 on A", async () => {
  const onA = await connect(A);
  const id = onA.transport.sessionId;
  assert.equal(await counter(onA.client), 1);
  assert.equal(await counter(onA.client), 2);

  // Same session id on instance B: no re-initialize, state intact.
  const onB = await connect(B, id);
  assert.equal(onB.transport.sessionId, id);
  assert.equal(await counter(onB.client), 3);
  assert.equal(text(await onB.client.callTool({ name: "echo", arguments: { text: "via B" } })), "via B");
  assert.equal(await counter(onA.client), 4, "A still serves it too");

  // Three new sessions through B (max 3 across the fleet) evict it.
  const others = await Promise.all([connect(B), connect(B), connect(B)]);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(await status(A, id), 404, "A closed the session evicted through B");
  assert.equal(await status(B, id), 404);
  await assert.rejects(counter(onA.client));

  for (const { client } of [onA, onB, ...others]) await client.close();
});
