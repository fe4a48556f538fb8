// Tests of the SessionRegistry binding (node:test). Timeouts use short real
// waits; assertions about "still alive" are made well inside the timeout,
// and "expired" ones well past it, so a loaded machine does not flake them.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CloseReason,
  ErrorCode,
  SESSION_ID_LEN,
  SessionError,
  SessionRegistry,
  errorFromStatus,
  libraryPath,
  native,
  statusText,
  version,
} from '../index.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

/** Asserts `fn` throws a SessionError with `code` (and returns it). */
function throwsCode(fn, code, httpStatus) {
  let caught;
  assert.throws(fn, (err) => {
    caught = err;
    return err instanceof SessionError && err.code === code;
  });
  assert.ok(caught instanceof Error);
  assert.equal(caught.name, 'SessionError');
  if (httpStatus !== undefined) assert.equal(caught.httpStatus, httpStatus);
  return caught;
}

function withRegistry(options, fn) {
  const r = new SessionRegistry(options);
  try {
    return fn(r);
  } finally {
    r.free();
  }
}

describe('library', () => {
  test('loads and reports its version', () => {
    assert.match(version(), /^\d+\.\d+\.\d+/);
    assert.match(libraryPath(), /mcp_session_core/);
    assert.equal(SESSION_ID_LEN, 36);
  });

  test('status texts come from the library', () => {
    assert.equal(statusText(5), 'session not found');
    assert.equal(statusText(12345), 'unknown status');
  });
});

describe('create / get / len / stats', () => {
  test('create returns distinct canonical ids and get returns the value', () => {
    withRegistry({}, (r) => {
      const values = [{ a: 1 }, 'two', 3, null, undefined, () => 5];
      const ids = values.map((v) => r.create(v));
      for (const id of ids) assert.match(id, UUID_V4);
      assert.equal(new Set(ids).size, ids.length);
      ids.forEach((id, i) => assert.equal(r.get(id), values[i]));
      assert.equal(r.len, values.length);
      assert.equal(r.heldValues, values.length);
    });
  });

  test('stats reflect the registry', () => {
    withRegistry({ maxSessions: 7 }, (r) => {
      r.create(1);
      const id = r.create(2);
      r.close(id);
      assert.deepEqual(r.stats(), {
        live: 1,
        maxSessions: 7,
        created: 2,
        closed: 1,
        evicted: 0,
        expired: 0,
        rejectedFull: 0,
        rateLimited: 0,
        eventsDropped: 0,
        eventsDiscarded: 0,
        rejectedPrincipalFull: 0,
        rateLimitedPrincipal: 0,
        principalsTracked: 0,
      });
    });
  });

  test('get: unknown id is NOT_FOUND (404)', () => {
    withRegistry({}, (r) => {
      const err = throwsCode(() => r.get(UNKNOWN_ID), ErrorCode.NOT_FOUND, 404);
      assert.equal(err.message, 'session not found');
      assert.equal(err.status, 5);
      assert.equal(err.retryAfterMs, undefined);
    });
  });

  test('get: malformed ids are MALFORMED_ID (400)', () => {
    withRegistry({}, (r) => {
      const id = r.create('v');
      const bad = [
        '',
        'abc',
        id.toUpperCase(),
        `${id}0`,
        id.slice(0, 35),
        `{${id}}`,
        id.replaceAll('-', ''),
        `${id.slice(0, 35)}é`,
        `${id}\0junk`, // must not read as `id`
        '\0',
      ];
      for (const text of bad) throwsCode(() => r.get(text), ErrorCode.MALFORMED_ID, 400);
      for (const notText of [undefined, null, 42, Buffer.from(id)]) {
        throwsCode(() => r.get(notText), ErrorCode.MALFORMED_ID, 400);
      }
      assert.equal(r.get(id), 'v');
    });
  });
});

describe('take (single use)', () => {
  test('take returns the value once, checks the principal, reports redeemed', () => {
    withRegistry({ maxSessions: 8 }, (r) => {
      const id = r.create({ n: 7 }, 'alice');
      throwsCode(() => r.take(id, 'bob'), ErrorCode.NOT_FOUND, 404);
      assert.deepEqual(r.get(id, 'alice'), { n: 7 }, 'a refused take consumes nothing');
      assert.deepEqual(r.take(id, 'alice'), { n: 7 });
      throwsCode(() => r.take(id, 'alice'), ErrorCode.NOT_FOUND, 404);
      throwsCode(() => r.take('nope'), ErrorCode.MALFORMED_ID, 400);
      const closed = r.drainClosed();
      assert.equal(closed.length, 1);
      assert.equal(closed[0].reason, CloseReason.REDEEMED);
      assert.equal(closed[0].id, id);
      assert.equal(r.heldValues, 0);
    });
  });
});

describe('confirm / close', () => {
  test('confirm is idempotent; NOT_FOUND and MALFORMED_ID', () => {
    withRegistry({}, (r) => {
      const id = r.create('v');
      r.confirm(id);
      r.confirm(id);
      throwsCode(() => r.confirm(UNKNOWN_ID), ErrorCode.NOT_FOUND, 404);
      throwsCode(() => r.confirm('nope'), ErrorCode.MALFORMED_ID, 400);
      r.close(id);
      throwsCode(() => r.confirm(id), ErrorCode.NOT_FOUND);
    });
  });

  test('close returns the value; the value is released by drainClosed', () => {
    withRegistry({}, (r) => {
      const value = { transport: 'x' };
      const id = r.create(value);
      assert.equal(r.close(id), value);
      assert.equal(r.len, 0);
      assert.equal(r.heldValues, 1, 'held until drained');
      throwsCode(() => r.get(id), ErrorCode.NOT_FOUND);
      throwsCode(() => r.close(id), ErrorCode.NOT_FOUND, 404);
      throwsCode(() => r.close('x'), ErrorCode.MALFORMED_ID, 400);
      assert.deepEqual(r.drainClosed(), [{ id, value, reason: CloseReason.CLOSED }]);
      assert.equal(r.heldValues, 0);
      assert.deepEqual(r.drainClosed(), []);
    });
  });

  test('drainClosed empties queues larger than one batch, oldest first', () => {
    withRegistry({}, (r) => {
      const ids = Array.from({ length: 200 }, (_, i) => r.create(i));
      for (const id of ids) r.close(id);
      const events = r.drainClosed();
      assert.deepEqual(
        events.map((e) => e.value),
        ids.map((_, i) => i),
      );
      assert.deepEqual(
        events.map((e) => e.id),
        ids,
      );
      assert.equal(r.heldValues, 0);
    });
  });
});

describe('principal binding', () => {
  test('a bound session is found only by the same principal', () => {
    withRegistry({}, (r) => {
      const id = r.create('alice-value', 'alice');
      assert.equal(r.get(id, 'alice'), 'alice-value');
      assert.equal(r.get(id, Buffer.from('alice')), 'alice-value', 'string and bytes are the same principal');
      throwsCode(() => r.get(id, 'bob'), ErrorCode.NOT_FOUND, 404);
      throwsCode(() => r.get(id, 'alic'), ErrorCode.NOT_FOUND);
      throwsCode(() => r.get(id, 'alice '), ErrorCode.NOT_FOUND);
      throwsCode(() => r.get(id), ErrorCode.NOT_FOUND, 404); // no principal does not see a bound session
    });
  });

  test('an unbound session is found by anyone', () => {
    withRegistry({}, (r) => {
      const id = r.create('v');
      assert.equal(r.get(id), 'v');
      assert.equal(r.get(id, 'alice'), 'v');
      assert.equal(r.get(id, ''), 'v');
    });
  });

  test('binary principals (with NUL bytes) compare as bytes', () => {
    withRegistry({}, (r) => {
      const p = Buffer.from([0x61, 0x00, 0x62, 0xff]);
      const id = r.create('v', p);
      assert.equal(r.get(id, new Uint8Array([0x61, 0x00, 0x62, 0xff])), 'v');
      throwsCode(() => r.get(id, Buffer.from([0x61])), ErrorCode.NOT_FOUND);
      throwsCode(() => r.get(id, 'a'), ErrorCode.NOT_FOUND);
    });
  });

  test('the empty principal binds (it is not "no principal")', () => {
    // koffi passes an empty Buffer as NULL; the binding must not let that
    // turn a bound session into an unbound one.
    withRegistry({}, (r) => {
      for (const empty of ['', Buffer.alloc(0), new Uint8Array(0)]) {
        const id = r.create('v', empty);
        assert.equal(r.get(id, ''), 'v');
        assert.equal(r.get(id, Buffer.alloc(0)), 'v');
        throwsCode(() => r.get(id), ErrorCode.NOT_FOUND);
        throwsCode(() => r.get(id, 'x'), ErrorCode.NOT_FOUND);
      }
    });
  });

  test('a principal of another type is a TypeError', () => {
    withRegistry({}, (r) => {
      assert.throws(() => r.create('v', 42), TypeError);
      const id = r.create('v');
      assert.throws(() => r.get(id, { user: 'a' }), TypeError);
      assert.equal(r.heldValues, 1, 'a refused create holds nothing');
    });
  });
});

describe('capacity', () => {
  test('evict (default): FIFO by creation, the event carries the evicted value', () => {
    withRegistry({ maxSessions: 3 }, (r) => {
      const values = [{ n: 0 }, { n: 1 }, { n: 2 }];
      const ids = values.map((v) => r.create(v));
      r.get(ids[0]); // use does not protect from FIFO eviction
      const d = { n: 3 };
      const idD = r.create(d);
      assert.equal(r.len, 3);
      assert.deepEqual(r.drainClosed(), [{ id: ids[0], value: values[0], reason: CloseReason.EVICTED }]);
      throwsCode(() => r.get(ids[0]), ErrorCode.NOT_FOUND);
      r.create({ n: 4 });
      r.create({ n: 5 });
      const evicted = r.drainClosed();
      assert.deepEqual(
        evicted.map((e) => [e.id, e.value, e.reason]),
        [
          [ids[1], values[1], 'evicted'],
          [ids[2], values[2], 'evicted'],
        ],
      );
      assert.equal(r.get(idD), d);
      assert.equal(r.stats().evicted, 3);
      assert.equal(r.heldValues, 3);
    });
  });

  test("reject: AT_CAPACITY (503) with retryAfterMs; nothing evicted", () => {
    withRegistry({ maxSessions: 2, onFull: 'reject' }, (r) => {
      const a = r.create('a');
      r.create('b');
      const err = throwsCode(() => r.create('c'), ErrorCode.AT_CAPACITY, 503);
      assert.equal(err.retryAfterMs, 1000);
      assert.equal(err.retryAfterSeconds, 1);
      assert.equal(err.message, 'session capacity reached');
      assert.deepEqual(r.drainClosed(), []);
      assert.equal(r.len, 2);
      assert.equal(r.heldValues, 2, 'the refused value is not held');
      assert.equal(r.stats().rejectedFull, 1);
      r.close(a);
      r.create('c');
      assert.equal(r.len, 2);
    });
  });
});

describe('rate limit', () => {
  test('RATE_LIMITED (429) with a never-short retryAfterMs; a retry after it succeeds', async () => {
    const r = new SessionRegistry({ rateLimit: { max: 2, windowMs: 150 } });
    try {
      r.create(1);
      r.create(2);
      const err = throwsCode(() => r.create(3), ErrorCode.RATE_LIMITED, 429);
      // At most the window plus two clock ticks (the hint is never short).
      assert.ok(err.retryAfterMs > 0 && err.retryAfterMs <= 150 + 20, `retryAfterMs ${err.retryAfterMs}`);
      assert.equal(err.retryAfterSeconds, 1);
      assert.equal(r.stats().rateLimited, 1);
      assert.equal(r.heldValues, 2);
      await sleep(err.retryAfterMs + 20);
      r.create(3);
      assert.equal(r.len, 3);
    } finally {
      r.free();
    }
  });

  test('a rate-limited create does not evict', () => {
    withRegistry({ maxSessions: 1, rateLimit: { max: 1, windowMs: 60_000 } }, (r) => {
      const a = r.create('a');
      throwsCode(() => r.create('b'), ErrorCode.RATE_LIMITED);
      assert.equal(r.get(a), 'a');
      assert.deepEqual(r.drainClosed(), []);
    });
  });
});

describe('expiry (short real timeouts)', () => {
  test('idle timeout: purgeExpired reclaims idle sessions; lookups refresh activity', async () => {
    const r = new SessionRegistry({ idleTimeoutMs: 120 });
    try {
      const idle = r.create('idle');
      const busy = r.create('busy');
      // Touch `busy` every ~30 ms for 300 ms (2.5 idle timeouts).
      const start = performance.now();
      let last = start;
      let maxGap = 0;
      while (performance.now() - start < 300) {
        await sleep(30);
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
        if (maxGap < 100) assert.equal(r.get(busy), 'busy');
      }
      throwsCode(() => r.get(idle), ErrorCode.NOT_FOUND); // lazily expired
      assert.equal(r.purgeExpired() >= 0, true);
      const events = r.drainClosed();
      const idleEvent = events.find((e) => e.id === idle);
      assert.deepEqual(idleEvent, { id: idle, value: 'idle', reason: CloseReason.IDLE_TIMEOUT });
      if (maxGap < 100) {
        // Never idle for a whole timeout: still open.
        assert.equal(r.get(busy), 'busy');
        assert.equal(events.length, 1);
      }
      // Let `busy` idle out too, then purge reclaims it.
      await sleep(250);
      const purged = r.purgeExpired();
      assert.equal(purged, maxGap < 100 ? 1 : purged);
      assert.equal(r.len, 0);
      r.drainClosed();
      assert.equal(r.heldValues, 0);
      assert.equal(r.stats().expired, 2);
    } finally {
      r.free();
    }
  });

  test('init timeout: unconfirmed sessions are reclaimed, confirmed ones stay', async () => {
    const r = new SessionRegistry({ initTimeoutMs: 80 });
    try {
      const pending = r.create('pending');
      const confirmed = r.create('confirmed');
      r.confirm(confirmed);
      await sleep(200);
      assert.equal(r.purgeExpired(), 1);
      assert.deepEqual(r.drainClosed(), [{ id: pending, value: 'pending', reason: CloseReason.INIT_TIMEOUT }]);
      assert.equal(r.get(confirmed), 'confirmed');
      throwsCode(() => r.confirm(pending), ErrorCode.NOT_FOUND);
    } finally {
      r.free();
    }
  });

  test('max lifetime: a session expires however active it is', async () => {
    const r = new SessionRegistry({ maxLifetimeMs: 100 });
    try {
      const id = r.create('v');
      assert.equal(r.get(id), 'v');
      const start = performance.now();
      while (performance.now() - start < 250) {
        await sleep(25);
        try {
          r.get(id);
        } catch (err) {
          assert.equal(err.code, ErrorCode.NOT_FOUND);
        }
      }
      throwsCode(() => r.get(id), ErrorCode.NOT_FOUND);
      r.purgeExpired();
      assert.deepEqual(r.drainClosed(), [{ id, value: 'v', reason: CloseReason.MAX_LIFETIME }]);
      assert.equal(r.heldValues, 0);
    } finally {
      r.free();
    }
  });
});

describe('configuration', () => {
  test('invalid settings are INVALID_CONFIG', () => {
    const bad = [
      { maxSessions: 0 },
      { maxSessions: -1 },
      { maxSessions: 1.5 },
      { maxSessions: '10' },
      { onFull: 'drop' },
      { rateLimit: { max: 5 } }, // no window
      { rateLimit: { max: 5, windowMs: 0 } },
      { rateLimit: { max: 1_048_577, windowMs: 1000 } },
      { rateLimit: 5 },
      { eventQueueCapacity: 16_777_217 },
      { idleTimeoutMs: Number.NaN },
      { maxSesions: 5 }, // typo: unknown option
    ];
    for (const options of bad) {
      const err = throwsCode(() => new SessionRegistry(options), ErrorCode.INVALID_CONFIG, 500);
      assert.ok(err.message.length > 0, JSON.stringify(options));
    }
  });

  test('every option is accepted; 64-bit values as BigInt', () => {
    const r = new SessionRegistry({
      maxSessions: 5n,
      onFull: 'reject',
      idleTimeoutMs: 60_000,
      maxLifetimeMs: 2n ** 64n - 1n,
      initTimeoutMs: 10_000,
      rateLimit: { max: 100, windowMs: 1000 },
      eventQueueCapacity: 10,
    });
    try {
      const id = r.create('v');
      assert.equal(r.get(id), 'v');
      assert.equal(r.stats().maxSessions, 5);
    } finally {
      r.free();
    }
    new SessionRegistry({ rateLimit: null }).free();
  });

  test('a bounded event queue discards (and counts) the oldest undrained events; values stay bounded', () => {
    const r = new SessionRegistry({ maxSessions: 1, eventQueueCapacity: 2 });
    for (let i = 0; i < 6; i++) r.create(i);
    // Evicted 0..4; the binding keeps the newest 2 + 1 undrained events.
    assert.equal(r.heldValues, 4);
    assert.deepEqual(
      r.drainClosed().map((e) => e.value),
      [2, 3, 4],
    );
    assert.equal(r.stats().eventsDiscarded, 2);
    assert.equal(r.stats().eventsDropped, 0, 'the C queue never fills');
    assert.deepEqual(
      r.free().map((e) => e.value),
      [5],
    );
    assert.equal(r.heldValues, 0);
  });
});

describe('free', () => {
  test('free is idempotent and releases everything still held', () => {
    const r = new SessionRegistry({ maxSessions: 2 });
    const a = r.create('a');
    r.create('b');
    const c = r.create('c'); // evicts a
    const released = r.free();
    // Queued events first; then the open sessions, in no particular order.
    assert.deepEqual(
      released.map((e) => [e.value, e.reason]),
      [['a', 'evicted'], ...released.slice(1).map((e) => [e.value, 'shutdown'])],
    );
    assert.deepEqual(released.slice(1).map((e) => e.value).sort(), ['b', 'c']);
    assert.equal(released[0].id, a);
    assert.equal(released.find((e) => e.value === 'c').id, c);
    assert.equal(r.freed, true);
    assert.equal(r.heldValues, 0);
    assert.deepEqual(r.free(), []);
    assert.deepEqual(r.free(), []);
    assert.equal(r.len, 0);
    assert.deepEqual(r.drainClosed(), []);
  });

  test('free reports sessions far beyond the queue capacity, and holds nothing after', () => {
    const r = new SessionRegistry({ maxSessions: 1000, eventQueueCapacity: 8 });
    const ids = new Map();
    for (let i = 0; i < 1000; i++) ids.set(i, r.create(i));
    assert.equal(r.heldValues, 1000);
    const released = r.free();
    assert.equal(released.length, 1000);
    const seen = new Set();
    for (const e of released) {
      assert.equal(e.reason, 'shutdown');
      assert.equal(ids.get(e.value), e.id);
      assert.ok(!seen.has(e.value), 'reported twice');
      seen.add(e.value);
    }
    assert.equal(r.heldValues, 0);
  });

  test('use after free is REGISTRY_FREED, never a crash', () => {
    const r = new SessionRegistry();
    const id = r.create('v');
    r.free();
    for (const op of [
      () => r.create('x'),
      () => r.get(id),
      () => r.confirm(id),
      () => r.close(id),
      () => r.purgeExpired(),
      () => r.stats(),
    ]) {
      throwsCode(op, ErrorCode.REGISTRY_FREED, 503);
    }
  });

  test('Symbol.dispose frees', () => {
    const r = new SessionRegistry();
    r.create('v');
    r[Symbol.dispose ?? Symbol.for('Symbol.dispose')]();
    assert.equal(r.freed, true);
  });
});

describe('every value is released exactly once', () => {
  test('mixed churn: closes, evictions, expiries; the Map ends empty', async () => {
    const r = new SessionRegistry({ maxSessions: 10, idleTimeoutMs: 60 });
    try {
      const created = new Set();
      const released = [];
      for (let i = 0; i < 50; i++) {
        const v = { i };
        const id = r.create(v);
        created.add(v);
        if (i % 3 === 0) r.close(id);
        if (i % 10 === 0) released.push(...r.drainClosed());
      }
      await sleep(150);
      assert.ok(r.purgeExpired() > 0);
      released.push(...r.drainClosed());
      assert.equal(r.len, 0);
      assert.equal(r.heldValues, 0);
      assert.equal(released.length, created.size);
      assert.deepEqual(new Set(released.map((e) => e.value)), created);
      const reasons = new Set(released.map((e) => e.reason));
      assert.deepEqual(reasons, new Set(['closed', 'evicted', 'idle_timeout']));
      const s = r.stats();
      assert.equal(s.closed + s.evicted + s.expired, s.created);
    } finally {
      r.free();
    }
  });
});

describe('raw C ABI (native())', () => {
  test('NULL arguments are NULL_ARGUMENT, never a crash', () => {
    const n = native();
    const tag = new BigUint64Array(1);
    const id = Buffer.alloc(37);
    assert.equal(n.msc_session_get(null, UNKNOWN_ID, null, tag), 1);
    assert.equal(n.msc_registry_new(null, [null]), 1);
    assert.equal(n.msc_registry_stats(null, {}), 1);
    assert.equal(n.msc_registry_purge_expired(null, [0]), 1);
    assert.equal(n.msc_registry_len(null), 0);
    assert.equal(n.msc_registry_drain_closed(null, Buffer.alloc(64), 1), 0);
    n.msc_registry_free(null);
    const out = [null];
    assert.equal(n.msc_registry_new(n.msc_config_default(), out), 0);
    const reg = out[0];
    try {
      assert.equal(n.msc_session_get_ex(reg, null, null, 0, tag), 1);
      assert.equal(n.msc_session_confirm(reg, null), 1);
      assert.equal(n.msc_session_close(reg, null, null), 1);
      assert.equal(n.msc_session_create_ex(reg, 1, null, 0, null, 37, null), 1);
      assert.equal(n.msc_session_create_ex(reg, 1, null, 3, id, 37, null), 1, 'NULL principal, length 3');
      assert.equal(n.msc_session_create(reg, 1, null, null), 1);
      assert.equal(n.msc_registry_len(reg), 0, 'no refused call created a session');
      const err = errorFromStatus(1);
      assert.equal(err.code, ErrorCode.NULL_ARGUMENT);
      assert.equal(err.httpStatus, 500);
      assert.equal(errorFromStatus(0), null, 'MSC_OK is not an error');
      const unknown = errorFromStatus(1000);
      assert.equal(unknown.code, ErrorCode.UNKNOWN);
      assert.equal(unknown.httpStatus, 500);
    } finally {
      n.msc_registry_free(reg);
    }
  });

  test('a short id buffer is BUFFER_TOO_SMALL and creates nothing', () => {
    const n = native();
    const out = [null];
    assert.equal(n.msc_registry_new(n.msc_config_default(), out), 0);
    try {
      assert.equal(n.msc_session_create_ex(out[0], 1, null, 0, Buffer.alloc(36), 36, null), 7);
      assert.equal(n.msc_registry_len(out[0]), 0);
      const err = errorFromStatus(7);
      assert.equal(err.code, ErrorCode.BUFFER_TOO_SMALL);
      assert.equal(err.message, 'output buffer too small');
    } finally {
      n.msc_registry_free(out[0]);
    }
  });

  test('every status maps to a code and an HTTP status', () => {
    const expected = [
      [1, 'NULL_ARGUMENT', 500],
      [2, 'INVALID_CONFIG', 500],
      [3, 'AT_CAPACITY', 503],
      [4, 'RATE_LIMITED', 429],
      [5, 'NOT_FOUND', 404],
      [6, 'MALFORMED_ID', 400],
      [7, 'BUFFER_TOO_SMALL', 500],
      [8, 'INTERNAL', 500],
      [9, 'SHUT_DOWN', 503],
      [99, 'UNKNOWN', 500],
    ];
    for (const [status, code, http] of expected) {
      const err = errorFromStatus(status);
      assert.ok(err instanceof SessionError);
      assert.equal(err.code, code);
      assert.equal(err.httpStatus, http);
      assert.equal(err.status, status);
      assert.equal(err.message, statusText(status));
    }
  });
});
