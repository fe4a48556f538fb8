// Fairness under a flood, with the official TypeScript SDK's client: the
// example server started by test.sh with
//   --max-sessions 10 --max-sessions-per-principal 3 --bearer-tokens FILE
// (tokens: TOKEN_A → alice, TOKEN_B → bob, TOKEN_C → mallory). Alice and
// Bob hold two sessions each; Mallory initializes 40 sessions, 8 at a
// time. Her creates evict only her own oldest sessions (at her cap of 3),
// so Alice's and Bob's sessions all still answer, she holds at most 3, and
// the registry never holds more than 10.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const MCP_URL = process.env.MCP_URL;
const TOKENS = {
  alice: process.env.TOKEN_A,
  bob: process.env.TOKEN_B,
  mallory: process.env.TOKEN_C,
};
assert.ok(MCP_URL && TOKENS.alice && TOKENS.bob && TOKENS.mallory, "run test.sh");
const STATS_URL = new URL("/stats", MCP_URL).href;

async function connect(token, name) {
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name, version: "0.0.0" });
  await client.connect(transport);
  return { client, transport };
}

function text(result) {
  assert.equal(result.isError ?? false, false, JSON.stringify(result));
  return result.content[0].text;
}

// The status of a raw tools/list in `sessionId` with `token`.
async function statusOf(sessionId, token) {
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-session-id": sessionId,
  };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const response = await fetch(MCP_URL, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  await response.arrayBuffer();
  return response.status;
}

async function stats() {
  return (await fetch(STATS_URL)).json();
}

test("no token: 401 with a Bearer challenge", async () => {
  const response = await fetch(MCP_URL, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "0" } },
    }),
  });
  await response.arrayBuffer();
  assert.equal(response.status, 401);
  assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer /);
});

test("one principal's flood churns only its own sessions", async () => {
  const victims = [];
  for (const who of ["alice", "bob"]) {
    for (let i = 0; i < 2; i++) victims.push({ who, ...(await connect(TOKENS[who], `${who}${i}`)) });
  }
  for (const { client } of victims) assert.equal(text(await client.callTool({ name: "counter", arguments: {} })), "1");

  let peakLive = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakLive = Math.max(peakLive, (await stats()).live);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  // With 8 of her handshakes in flight and a cap of 3, some are evicted
  // before they complete: their connect fails (404 on the
  // notifications/initialized), which is her flood's own loss.
  const flood = [];
  let refused = 0;
  for (let wave = 0; wave < 5; wave++) {
    const batch = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => connect(TOKENS.mallory, `m${wave}-${i}`)),
    );
    for (const outcome of batch) {
      if (outcome.status === "fulfilled") flood.push(outcome.value);
      else refused += 1;
    }
  }
  assert.equal(flood.length + refused, 40);
  sampling = false;
  await sampler;
  peakLive = Math.max(peakLive, (await stats()).live);

  // Every victim session still answers, and its counter went on.
  for (const { who, client, transport } of victims) {
    assert.equal(await statusOf(transport.sessionId, TOKENS[who]), 200, `${who}'s session survived`);
    assert.equal(text(await client.callTool({ name: "counter", arguments: {} })), "2");
  }
  // Mallory holds at most her cap; her other sessions were evicted (404).
  const statuses = await Promise.all(flood.map(({ transport }) => statusOf(transport.sessionId, TOKENS.mallory)));
  const alive = statuses.filter((s) => s === 200).length;
  assert.ok(alive <= 3, `mallory holds ${alive} sessions, cap 3`);
  assert.ok(alive >= 1, "her newest session is open (nothing was created after it)");
  assert.equal(statuses.filter((s) => s !== 200 && s !== 404).length, 0, statuses.join(","));
  // Another principal presenting a victim's id sees nothing (404).
  assert.equal(await statusOf(victims[0].transport.sessionId, TOKENS.mallory), 404);

  assert.ok(peakLive <= 10, `live peaked at ${peakLive}, max 10`);
  const final = await stats();
  assert.ok(final.live <= 10, JSON.stringify(final));
  assert.equal(final.live, 4 + alive);

  await Promise.all([...victims, ...flood].map(({ client }) => client.close().catch(() => {})));
});
