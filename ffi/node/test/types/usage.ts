// A typed use of the package, checked by `tsc --noEmit -p test/types` in
// ffi/node/test.sh: the declarations (index.d.ts) must accept what the
// runtime does and reject misuse (each @ts-expect-error must be an error).
// The package imports itself by name, as a user's program does.
import {
  CloseReason,
  ErrorCode,
  SESSION_ID_LEN,
  SessionError,
  SessionRegistry,
  Fleet,
  errorFromStatus,
  fleetSupported,
  libraryPath,
  platformPackageName,
  version,
  type ClosedSession,
  type FleetEvent,
  type FleetOptions,
  type RegistryStats,
  type SessionRegistryOptions,
} from 'mcp-session-core';

interface Transport {
  close(reason: CloseReason): void;
}

// Every error code a SessionError can carry, exhaustively: a code added at
// run time but missing here (or in the union) fails the `never` check.
function describe(code: ErrorCode): number {
  switch (code) {
    case 'NULL_ARGUMENT':
    case 'INVALID_CONFIG':
    case 'BUFFER_TOO_SMALL':
    case 'INTERNAL':
    case 'UNKNOWN':
      return 500;
    case 'AT_CAPACITY':
    case 'SHUT_DOWN':
    case 'STORE_UNAVAILABLE':
    case 'REGISTRY_FREED':
      return 503;
    case 'RATE_LIMITED':
    case 'PRINCIPAL_FULL':
    case 'PRINCIPAL_RATE_LIMITED':
      return 429;
    case 'NOT_FOUND':
      return 404;
    case 'MALFORMED_ID':
      return 400;
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

function reasonText(reason: CloseReason): string {
  switch (reason) {
    case 'closed':
    case 'evicted':
    case 'idle_timeout':
    case 'max_lifetime':
    case 'init_timeout':
    case 'shutdown':
    case 'redeemed':
      return reason;
    default: {
      // The only other form: a reason number this binding does not know.
      const unknown: `unknown(${number})` = reason;
      return unknown;
    }
  }
}

const closed: ClosedSession<Transport>[] = [];
const options: SessionRegistryOptions<Transport> = {
  maxSessions: 100,
  onFull: 'evict',
  idleTimeoutMs: 60_000,
  maxLifetimeMs: 3_600_000n,
  initTimeoutMs: 10_000,
  rateLimit: { max: 10, windowMs: 1_000 },
  eventQueueCapacity: 0,
  onClose: (ev) => {
    ev.value.close(ev.reason);
    closed.push(ev);
  },
};
const registry = new SessionRegistry<Transport>(options);
const id: string = registry.create({ close: () => {} }, 'alice');
const t: Transport = registry.get(id, new Uint8Array([97]));
registry.confirm(id);
t.close(CloseReason.CLOSED);
const purged: number = registry.purgeExpired();
const drained: ClosedSession<Transport>[] = registry.drainClosed();
const stats: RegistryStats = registry.stats();
const discarded: number = stats.eventsDiscarded + stats.eventsDropped;
const held: number = registry.heldValues + registry.len;
const rest: ClosedSession<Transport>[] = registry.free();
registry[Symbol.dispose]();

const ok: null = errorFromStatus(0);
const err: SessionError | null = errorFromStatus(5);
if (err !== null) {
  const code: ErrorCode = err.code;
  const http: number = err.httpStatus + describe(code);
  const retry: number | undefined = err.retryAfterSeconds;
}
const freed: ErrorCode = ErrorCode.REGISTRY_FREED;
const unknownReason: CloseReason = 'unknown(9)';
const len: 36 = SESSION_ID_LEN;
const paths: string = libraryPath() + platformPackageName() + version() + reasonText('evicted');

// Misuse the declarations must reject.
// @ts-expect-error onFull is 'evict', 'evict-idle' or 'reject'
new SessionRegistry({ onFull: 'drop' });
// @ts-expect-error a number is not a principal
registry.create({ close: () => {} }, 42);
// @ts-expect-error not a close reason
const badReason: CloseReason = 'gone';
// @ts-expect-error errorFromStatus(0) is null, not an error
const notAnError: SessionError = errorFromStatus(0);
// @ts-expect-error onClose receives this registry's value type
new SessionRegistry<Transport>({ onClose: (ev: ClosedSession<number>) => {} });

export { closed, purged, drained, discarded, held, rest, ok, freed, unknownReason, len, paths, badReason, notAnError };

// Fleet mode: async, no values; events by id.
async function fleetUsage(): Promise<void> {
  if (!fleetSupported()) return;
  const options: FleetOptions = { secret: 'fleet-secret-0123456789', maxSessions: 100, onFull: 'reject' };
  const fleet = await Fleet.connect('redis://127.0.0.1:6379/', options);
  const id: string = await fleet.create('alice');
  await fleet.get(id, 'alice');
  await fleet.take(id, Buffer.from('alice'));
  const events: FleetEvent[] = fleet.drainEvents();
  for (const e of events) {
    if ('gap' in e) continue;
    const reason: CloseReason = e.reason;
    void reason;
  }
  const live: number = (await fleet.stats()).live;
  void live;
  const fair: FleetOptions = {
    maxSessionsPerPrincipal: 4,
    maxAnonymousSessions: 8,
    rateLimitPerPrincipal: { max: 10, windowMs: 60_000 },
  };
  const fairFleet = await Fleet.connect('redis://127.0.0.1:6379/', fair);
  const { rejectedPrincipalFull, rateLimitedPrincipal } = await fairFleet.stats();
  const refused: number = rejectedPrincipalFull + rateLimitedPrincipal;
  void refused;
  // @ts-expect-error rateLimitPerPrincipal is { max, windowMs }
  await Fleet.connect('redis://127.0.0.1:6379/', { rateLimitPerPrincipal: 10 });
  // @ts-expect-error onFull is 'evict' | 'reject'
  await Fleet.connect('redis://127.0.0.1:6379/', { onFull: 'drop' });
  await fleet.free();
}
void fleetUsage;
