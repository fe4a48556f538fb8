// The official MCP TypeScript SDK's client (@modelcontextprotocol/sdk)
// against the mcp-server crate (server/src/main.rs). test.sh starts the server and sets
// MCP_URL (http://127.0.0.1:PORT/mcp).
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const MCP_URL = process.env.MCP_URL;
assert.ok(MCP_URL, "MCP_URL is not set: run test.sh");
const STATS_URL = new URL("/stats", MCP_URL).href;

async function connect(name = "ts-sdk-test") {
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL));
  const client = new Client({ name, version: "0.0.0" });
  await client.connect(transport);
  return { client, transport };
}

function text(result) {
  assert.equal(result.isError ?? false, false, JSON.stringify(result));
  return result.content[0].text;
}

// A raw POST, to see the status codes the SDK hides behind exceptions.
async function post(body, sessionId) {
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  if (sessionId !== undefined) headers["mcp-session-id"] = sessionId;
  const response = await fetch(MCP_URL, { method: "POST", headers, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return response;
}

const toolsList = { jsonrpc: "2.0", id: 1, method: "tools/list" };

test("initialize, list tools, call echo and counter", async () => {
  const { client, transport } = await connect();
  try {
    assert.equal(client.getServerVersion().name, "mcp-session-core-demo");
    assert.match(transport.sessionId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [
      "counter",
      "echo",
      "notify",
      "open_counter",
      "test_input_required_result_request_state",
      "test_input_required_result_tampered_state",
      "work",
    ]);

    const echoed = await client.callTool({ name: "echo", arguments: { text: "from TypeScript ✓" } });
    assert.equal(text(echoed), "from TypeScript ✓");
    for (let n = 1; n <= 3; n++) {
      assert.equal(text(await client.callTool({ name: "counter", arguments: {} })), String(n));
    }
  } finally {
    await client.close();
  }
});

test("20 concurrent clients each count 1..10 in their own session", async () => {
  const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(`c${i}`)));
  try {
    const ids = clients.map(({ transport }) => transport.sessionId);
    assert.equal(new Set(ids).size, 20, "session ids are distinct");
    const seen = await Promise.all(
      clients.map(async ({ client }) => {
        const counts = [];
        for (let n = 0; n < 10; n++) {
          counts.push(Number(text(await client.callTool({ name: "counter", arguments: {} }))));
        }
        return counts;
      }),
    );
    for (const counts of seen) {
      assert.deepEqual(counts, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
  } finally {
    await Promise.all(clients.map(({ client }) => client.close()));
  }
});

test("400 without or with a malformed session id, 404 for an unknown one", async () => {
  assert.equal((await post(toolsList)).status, 400);
  assert.equal((await post(toolsList, "not-a-session-id")).status, 400);
  assert.equal((await post(toolsList, "0f8fad5b-d9cb-469f-a165-70867728950e")).status, 404);
});

test("terminateSession (DELETE) closes the session: its id is then 404", async () => {
  const { client, transport } = await connect();
  const id = transport.sessionId;
  assert.equal(text(await client.callTool({ name: "counter", arguments: {} })), "1");
  const before = await (await fetch(STATS_URL)).json();
  await transport.terminateSession();
  const after = await (await fetch(STATS_URL)).json();
  assert.equal(after.closed, before.closed + 1);
  assert.equal((await post(toolsList, id)).status, 404);
  await client.close();
});

test("GET /stats reports the registry", async () => {
  const stats = await (await fetch(STATS_URL)).json();
  for (const key of ["live", "max_sessions", "created", "closed", "evicted", "expired", "rejected_full", "rate_limited"]) {
    assert.equal(typeof stats[key], "number", key);
  }
  assert.ok(stats.live <= stats.max_sessions);
});
