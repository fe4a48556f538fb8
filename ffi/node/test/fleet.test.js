// Fleet mode (Fleet, over msc_fleet_*) against a private redis-server that
// this file starts on a free loopback port and stops at the end. Needs
// redis-server in PATH and a library built with `--features redis`.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { CloseReason, ErrorCode, Fleet, SessionError, fleetSupported } from '../index.js';

const SECRET = 'node-test-fleet-secret-0123456789';
let server;
let url;
let dir;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function listening(port, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`redis-server did not listen on ${port} within ${ms} ms`);
}

before(async () => {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server not found: install it with: apt-get install redis-server');
  }
  const port = await freePort();
  dir = mkdtempSync(path.join(os.tmpdir(), 'msc-fleet-node-'));
  server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  url = `redis://127.0.0.1:${port}/`;
  await listening(port, 10000);
});

after(() => {
  server?.kill('SIGCONT');
  server?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const opts = (prefix, extra = {}) => ({ secret: SECRET, prefix, callTimeoutMs: 3000, ...extra });

async function rejectsCode(promise, code, httpStatus) {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    return err instanceof SessionError && err.code === code;
  });
  if (httpStatus !== undefined) assert.equal(caught.httpStatus, httpStatus);
  return caught;
}

async function waitEvent(fleet, id) {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    for (const e of fleet.drainEvents()) if (!e.gap && e.id === id) return e.reason;
    await sleep(20);
  }
  throw new Error(`no close event for ${id} within 3 s`);
}

describe('Fleet', () => {
  test('the library has fleet mode', () => {
    assert.equal(fleetSupported(), true);
  });

  test('connect errors: bad options, short secret, nobody listening', async () => {
    await rejectsCode(Fleet.connect(url, opts('n-err', { onFull: 'drop' })), ErrorCode.INVALID_CONFIG);
    await rejectsCode(Fleet.connect(url, opts('n-err', { maxSessions: -1 })), ErrorCode.INVALID_CONFIG);
    await rejectsCode(Fleet.connect(url, opts('n-err', { bogus: 1 })), ErrorCode.INVALID_CONFIG);
    const short = await rejectsCode(Fleet.connect(url, opts('n-err', { secret: 'short' })), ErrorCode.INVALID_CONFIG);
    assert.match(short.message, /secret/);
    await rejectsCode(Fleet.connect(url, opts('{bad}')), ErrorCode.INVALID_CONFIG);
    const port = await freePort();
    const started = Date.now();
    const down = await rejectsCode(
      Fleet.connect(`redis://127.0.0.1:${port}/`, opts('n-err', { callTimeoutMs: 300 })),
      ErrorCode.STORE_UNAVAILABLE,
      503,
    );
    assert.ok(down instanceof SessionError);
    assert.ok(Date.now() - started < 3000);
  });

  test('create on one instance, get / close on another, binding, events', async () => {
    const a = await Fleet.connect(url, opts('n-basic'));
    const b = await Fleet.connect(url, opts('n-basic'));
    try {
      const id = await a.create('alice');
      assert.match(id, /^[0-9a-f-]{36}$/);
      await b.get(id, 'alice');
      await b.get(id, Buffer.from('alice'));
      await rejectsCode(b.get(id, 'bob'), ErrorCode.NOT_FOUND, 404);
      await rejectsCode(b.get(id), ErrorCode.NOT_FOUND, 404);
      await rejectsCode(b.get('../etc/passwd', 'alice'), ErrorCode.MALFORMED_ID, 400);
      await rejectsCode(b.get(undefined), ErrorCode.MALFORMED_ID, 400);
      await b.confirm(id);
      await b.close(id);
      await rejectsCode(b.close(id), ErrorCode.NOT_FOUND);
      await rejectsCode(a.get(id, 'alice'), ErrorCode.NOT_FOUND);
      assert.equal(await waitEvent(a, id), CloseReason.CLOSED);
      assert.equal(await waitEvent(b, id), CloseReason.CLOSED);
      const s = await a.stats();
      assert.deepEqual([s.live, s.created, s.closed], [0, 1, 1]);
    } finally {
      await a.free();
      await b.free();
    }
    await rejectsCode(a.create(), ErrorCode.REGISTRY_FREED, 503);
    assert.deepEqual(a.drainEvents(), []);
    await a.free(); // idempotent
  });

  test('reject, rate limit and eviction', async () => {
    const r = await Fleet.connect(url, opts('n-reject', { maxSessions: 1, onFull: 'reject' }));
    await r.create();
    const full = await rejectsCode(r.create(), ErrorCode.AT_CAPACITY, 503);
    assert.equal(full.retryAfterSeconds, 1);
    await r.free();

    const l = await Fleet.connect(url, opts('n-rate', { rateLimit: { max: 1, windowMs: 60000 } }));
    await l.create();
    const limited = await rejectsCode(l.create(), ErrorCode.RATE_LIMITED, 429);
    assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 60000);
    await l.free();

    const e = await Fleet.connect(url, opts('n-evict', { maxSessions: 2 }));
    const ids = [await e.create(), await e.create(), await e.create()];
    assert.equal(await waitEvent(e, ids[0]), CloseReason.EVICTED);
    assert.equal((await e.stats()).evicted, 1);
    await e.free();
  });

  test('per principal: a cap shared by two instances evicts its own oldest', async () => {
    const o = opts('n-pcap', { maxSessionsPerPrincipal: 2, reaperIntervalMs: 0 });
    const a = await Fleet.connect(url, o);
    const b = await Fleet.connect(url, o);
    try {
      const a1 = await a.create('alice');
      const bob = await b.create('bob');
      const a2 = await b.create('alice');
      const a3 = await a.create('alice'); // her oldest (made on a) goes
      assert.equal(await waitEvent(b, a1), CloseReason.EVICTED);
      await rejectsCode(b.get(a1, 'alice'), ErrorCode.NOT_FOUND, 404);
      await a.get(a2, 'alice');
      await a.get(a3, 'alice');
      await a.get(bob, 'bob');
      // The anonymous class has the same cap by default.
      const anon = [await b.create(), await a.create(), await b.create()];
      assert.equal(await waitEvent(a, anon[0]), CloseReason.EVICTED);
      await a.get(anon[2]);
      const s = await a.stats();
      assert.deepEqual(
        [s.live, s.evicted, s.created, s.rejectedPrincipalFull, s.rateLimitedPrincipal],
        [5, 2, 7, 0, 0],
      );
    } finally {
      await a.free();
      await b.free();
    }
  });

  test('per principal: PRINCIPAL_FULL under reject on every instance, others unaffected', async () => {
    const o = opts('n-pfull', { onFull: 'reject', maxSessions: 10, maxSessionsPerPrincipal: 1, maxAnonymousSessions: 2 });
    const a = await Fleet.connect(url, o);
    const b = await Fleet.connect(url, o);
    try {
      const first = await a.create('alice');
      const full = await rejectsCode(b.create('alice'), ErrorCode.PRINCIPAL_FULL, 429);
      assert.equal(full.retryAfterMs, 1000);
      assert.equal(full.retryAfterSeconds, 1);
      await b.create('bob');
      await a.create();
      await b.create();
      await rejectsCode(a.create(), ErrorCode.PRINCIPAL_FULL, 429);
      await b.close(first);
      await b.create('alice');
      const s = await b.stats();
      assert.deepEqual([s.rejectedPrincipalFull, s.rejectedFull, s.live], [2, 0, 4]);
    } finally {
      await a.free();
      await b.free();
    }
  });

  test('per principal: a rate limit shared by two instances spends none of the fleet budget', async () => {
    const o = opts('n-prate', {
      rateLimitPerPrincipal: { max: 2, windowMs: 60000 },
      rateLimit: { max: 5, windowMs: 60000 },
    });
    const a = await Fleet.connect(url, o);
    const b = await Fleet.connect(url, o);
    try {
      await a.create('alice');
      await b.create('alice');
      for (const f of [a, b]) {
        const limited = await rejectsCode(f.create('alice'), ErrorCode.PRINCIPAL_RATE_LIMITED, 429);
        assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 60000, `${limited.retryAfterMs}`);
      }
      // bob twice and one anonymous: exactly the fleet's 5.
      await b.create('bob');
      await a.create(Buffer.from('bob'));
      await a.create();
      await rejectsCode(b.create('carol'), ErrorCode.RATE_LIMITED, 429);
      const s = await a.stats();
      assert.deepEqual([s.rateLimitedPrincipal, s.rateLimited, s.created], [2, 1, 5]);
    } finally {
      await a.free();
      await b.free();
    }

    // A short window: the retryAfterMs given is enough.
    const short = opts('n-prate-short', { rateLimitPerPrincipal: { max: 1, windowMs: 300 } });
    const c = await Fleet.connect(url, short);
    const d = await Fleet.connect(url, short);
    try {
      await c.create('alice');
      const limited = await rejectsCode(d.create('alice'), ErrorCode.PRINCIPAL_RATE_LIMITED, 429);
      assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 300, `${limited.retryAfterMs}`);
      await d.create('bob');
      await sleep(limited.retryAfterMs + 50);
      await d.create('alice');
    } finally {
      await c.free();
      await d.free();
    }
  });

  test('per principal: invalid settings', async () => {
    for (const extra of [
      { maxSessionsPerPrincipal: -1 },
      { maxAnonymousSessions: 1.5 },
      { rateLimitPerPrincipal: 5 },
      { rateLimitPerPrincipal: { max: 5, windowMs: 0 } },
      { rateLimitPerPrincipal: { max: 2 ** 20 + 1, windowMs: 1000 } },
    ]) {
      await rejectsCode(Fleet.connect(url, opts('n-perr', extra)), ErrorCode.INVALID_CONFIG);
    }
  });

  test('take: exactly one of many concurrent takers on two instances wins', async () => {
    const a = await Fleet.connect(url, opts('n-take'));
    const b = await Fleet.connect(url, opts('n-take'));
    try {
      for (let round = 0; round < 10; round++) {
        const id = await a.create('p');
        await rejectsCode(b.take(id, 'q'), ErrorCode.NOT_FOUND);
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? b : a).take(id, 'p')),
        );
        const wins = results.filter((r) => r.status === 'fulfilled').length;
        assert.equal(wins, 1, `round ${round}`);
        for (const r of results) {
          if (r.status === 'rejected') assert.equal(r.reason.code, ErrorCode.NOT_FOUND);
        }
        assert.equal(await waitEvent(b, id), CloseReason.REDEEMED);
      }
      const s = await b.stats();
      assert.deepEqual([s.redeemed, s.live, s.created], [10, 0, 10]);
    } finally {
      await a.free();
      await b.free();
    }
  });

  test('a frozen Redis: STORE_UNAVAILABLE within the call timeout, then recovery', async () => {
    const f = await Fleet.connect(url, opts('n-down', { callTimeoutMs: 400 }));
    try {
      const id = await f.create();
      server.kill('SIGSTOP');
      const started = Date.now();
      let down;
      try {
        down = await rejectsCode(f.get(id), ErrorCode.STORE_UNAVAILABLE, 503);
        await rejectsCode(f.create(), ErrorCode.STORE_UNAVAILABLE, 503);
      } finally {
        server.kill('SIGCONT');
      }
      assert.equal(down.retryAfterSeconds, 1);
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      const deadline = Date.now() + 5000;
      for (;;) {
        try {
          await f.get(id);
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(50);
        }
      }
    } finally {
      await f.free();
    }
  });
});
