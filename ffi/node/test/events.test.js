// No close event is lost or leaked at the default settings (issue 15 item 1),
// and a host that never calls drainClosed() holds a bounded number of values.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionRegistry } from '../index.js';

const IDLE_MS = 1000;

/**
 * Defaults (10,000 sessions): create 10,000, close 5,000 without draining,
 * create 5,000 more, let all 10,000 open ones idle out together and purge.
 * With the C library's default queue (4,096) thousands would be dropped and
 * their values kept forever; here all 15,000 are reported exactly once.
 */
async function idleOutTogether(options, report) {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const r = new SessionRegistry({ idleTimeoutMs: IDLE_MS, ...options(report) });
    const start = Date.now();
    const ids = [];
    for (let i = 0; i < 10_000; i++) ids.push(r.create(i));
    for (let i = 0; i < 5_000; i++) r.close(ids[i]);
    for (let i = 10_000; i < 15_000; i++) ids.push(r.create(i));
    if (Date.now() - start >= IDLE_MS - 20) {
      r.free(); // the machine stalled: sessions may have expired early
      report.length = 0;
      continue;
    }
    await sleep(IDLE_MS + 30);
    assert.equal(r.purgeExpired(), 10_000);
    return { r, ids };
  }
  throw new Error('the machine is too loaded for a 1 s idle timeout (3 attempts)');
}

function checkReported(events, ids) {
  assert.equal(events.length, 15_000);
  const seen = new Set();
  const reasons = { closed: 0, idle_timeout: 0 };
  for (const ev of events) {
    assert.equal(ids[ev.value], ev.id);
    assert.ok(!seen.has(ev.value), 'reported twice');
    seen.add(ev.value);
    reasons[ev.reason]++;
  }
  assert.deepEqual(reasons, { closed: 5_000, idle_timeout: 10_000 });
}

test('10,000 sessions idling out together at the defaults: none dropped, every value released (drainClosed)', async () => {
  const { r, ids } = await idleOutTogether(() => ({}), []);
  assert.equal(r.stats().maxSessions, 10_000);
  checkReported(r.drainClosed(), ids);
  const s = r.stats();
  assert.equal(s.eventsDropped, 0);
  assert.equal(s.eventsDiscarded, 0);
  assert.equal(s.expired, 10_000);
  assert.equal(r.heldValues, 0);
  assert.deepEqual(r.free(), []);
});

test('the same with onClose: every event delivered, nothing held, drainClosed() never called', async () => {
  const events = [];
  const { r, ids } = await idleOutTogether((sink) => ({ onClose: (ev) => sink.push(ev) }), events);
  checkReported(events, ids);
  assert.equal(r.heldValues, 0);
  assert.equal(r.stats().eventsDropped, 0);
  r.free();
});

test('a host that never drains holds at most 2 * maxSessions + eventQueueCapacity values', () => {
  const r = new SessionRegistry({ maxSessions: 100 });
  let maxHeld = 0;
  for (let i = 0; i < 20_000; i++) {
    r.create(i); // past 100, each create evicts one
    if (i % 7 === 0) {
      const id = r.create(-i);
      r.close(id);
    }
    maxHeld = Math.max(maxHeld, r.heldValues);
  }
  // 100 open + at most 4,096 + 100 undrained events (4,096: the queue for
  // 100 sessions).
  const keep = 4096 + 100;
  assert.ok(maxHeld <= 100 + keep, `held ${maxHeld}`);
  assert.equal(r.heldValues, r.len + keep);
  const s = r.stats();
  assert.equal(s.eventsDropped, 0);
  assert.equal(s.eventsDiscarded, s.evicted + s.closed - keep);
  // The newest events are the ones kept.
  const kept = r.drainClosed();
  assert.equal(kept.length, keep);
  assert.equal(kept.at(-1).value, -19_999); // the last close
  assert.equal(r.heldValues, r.len);
  r.free();
});

test('an exception thrown by onClose is rethrown asynchronously; other events are still delivered', () => {
  // In a child process: the test runner treats any uncaught exception as a
  // failure of its own.
  const script = `
    import { SessionRegistry } from ${JSON.stringify(new URL('../index.js', import.meta.url).href)};
    const seen = [];
    const errors = [];
    process.on('uncaughtException', (err) => errors.push(err.message));
    const r = new SessionRegistry({
      maxSessions: 1,
      onClose: (ev) => { seen.push(ev.value); throw new Error('boom ' + ev.value); },
    });
    r.create('a');
    r.create('b'); // evicts a
    r.create('c'); // evicts b
    const heldNow = r.heldValues;
    setTimeout(() => {
      r.free();
      console.log(JSON.stringify({ seen, errors, heldNow }));
    }, 10);
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), { seen: ['a', 'b'], errors: ['boom a', 'boom b'], heldNow: 1 });
});
