// Fairness through the Node binding: per-principal caps (own-oldest
// eviction, PRINCIPAL_FULL under reject), the anonymous class, the
// per-principal rate limit, onFull 'evict-idle', and the new counters.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, SessionError, SessionRegistry } from '../index.js';

function throwsCode(fn, code) {
  let caught;
  assert.throws(fn, (err) => {
    caught = err;
    return err instanceof SessionError && err.code === code;
  });
  return caught;
}

test('a principal at its cap evicts its own oldest session', () => {
  const r = new SessionRegistry({ maxSessions: 10, maxSessionsPerPrincipal: 2 });
  const bob = r.create('bob', 'bob');
  const a1 = r.create('a1', 'alice');
  r.create('a2', 'alice');
  r.create('a3', 'alice');
  throwsCode(() => r.get(a1, 'alice'), ErrorCode.NOT_FOUND);
  assert.equal(r.get(bob, 'bob'), 'bob');
  const closed = r.drainClosed();
  assert.deepEqual(
    closed.map((c) => [c.value, c.reason]),
    [['a1', 'evicted']],
  );
  const s = r.stats();
  assert.equal(s.live, 3);
  assert.equal(s.principalsTracked, 2);
  r.free();
});

test('reject at the cap: PRINCIPAL_FULL, 429, retry after 1 s; the anonymous class', () => {
  const r = new SessionRegistry({
    maxSessions: 10,
    onFull: 'reject',
    maxSessionsPerPrincipal: 1,
    maxAnonymousSessions: 2,
  });
  r.create(1, 'alice');
  const err = throwsCode(() => r.create(2, 'alice'), ErrorCode.PRINCIPAL_FULL);
  assert.equal(err.httpStatus, 429);
  assert.equal(err.retryAfterSeconds, 1);
  r.create(3);
  r.create(4);
  throwsCode(() => r.create(5), ErrorCode.PRINCIPAL_FULL);
  const s = r.stats();
  assert.equal(s.rejectedPrincipalFull, 2);
  assert.equal(s.rejectedFull, 0);
  r.free();
});

test('per-principal rate limit', () => {
  const r = new SessionRegistry({ maxSessions: 10, rateLimitPerPrincipal: { max: 1, windowMs: 60_000 } });
  r.create(1, 'alice');
  const err = throwsCode(() => r.create(2, 'alice'), ErrorCode.PRINCIPAL_RATE_LIMITED);
  assert.equal(err.httpStatus, 429);
  assert.ok(err.retryAfterMs > 59_000 && err.retryAfterMs <= 61_000, String(err.retryAfterMs));
  r.create(3, 'bob');
  const s = r.stats();
  assert.equal(s.rateLimitedPrincipal, 1);
  assert.equal(s.rateLimited, 0);
  r.free();
});

test("onFull 'evict-idle' keeps a session that served a request; 'evict' does not", () => {
  for (const onFull of ['evict-idle', 'evict']) {
    const r = new SessionRegistry({ maxSessions: 10, onFull });
    const active = r.create('active');
    r.confirm(active);
    r.get(active);
    for (let i = 0; i < 40; i++) {
      const id = r.create('flood');
      r.confirm(id);
      assert.ok(r.len <= 10);
    }
    if (onFull === 'evict-idle') assert.equal(r.get(active), 'active');
    else throwsCode(() => r.get(active), ErrorCode.NOT_FOUND);
    r.free();
  }
});

test('invalid fairness settings', () => {
  throwsCode(() => new SessionRegistry({ onFull: 'evict-newest' }), ErrorCode.INVALID_CONFIG);
  throwsCode(() => new SessionRegistry({ maxSessionsPerPrincipal: -1 }), ErrorCode.INVALID_CONFIG);
  throwsCode(
    () => new SessionRegistry({ rateLimitPerPrincipal: { max: 3, windowMs: 0 } }),
    ErrorCode.INVALID_CONFIG,
  );
});
