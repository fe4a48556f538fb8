// Argument conversions shared by SessionRegistry (index.js) and Fleet
// (fleet.js). Not part of the public API.

import { ErrorCode, SessionError, native } from './index.js';

// koffi passes an empty Buffer as a NULL pointer (measured: address 0n),
// which the _ex functions read as "no principal". An empty principal is
// therefore passed as a non-empty buffer with length 0.
const EMPTY_PRINCIPAL = Buffer.alloc(1);

/** @returns {[Uint8Array | null, number]} pointer argument and length */
export function principalArg(principal) {
  if (principal === undefined || principal === null) return [null, 0];
  let bytes;
  if (typeof principal === 'string') bytes = Buffer.from(principal, 'utf8');
  else if (principal instanceof Uint8Array) bytes = principal;
  else throw new TypeError('principal must be a string, a Buffer/Uint8Array, null or undefined');
  return bytes.length === 0 ? [EMPTY_PRINCIPAL, 0] : [bytes, bytes.length];
}

/**
 * Ids are checked for type and NUL here (a JS string is NUL-terminated on
 * the way to C, so "valid-id\0junk" would otherwise read as valid-id); the
 * library decides everything else.
 */
export function idArg(id) {
  if (typeof id !== 'string') {
    throw new SessionError(
      ErrorCode.MALFORMED_ID,
      id === undefined || id === null ? 'missing session id' : 'session id must be a string',
      { status: 6 },
    );
  }
  if (id.includes('\0')) {
    throw new SessionError(ErrorCode.MALFORMED_ID, native().msc_status_str(6), { status: 6 });
  }
  return id;
}

