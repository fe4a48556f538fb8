package mcpsession

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors returned (possibly wrapped) by Registry methods. Test them
// with errors.Is. Each corresponds to one msc_status of the C ABI, except
// ErrClosed, which is Go-only.
var (
	// ErrNullArgument corresponds to MSC_ERR_NULL_ARGUMENT: a required
	// pointer was NULL. The binding never passes NULL where it is required,
	// so seeing it means a bug in the binding.
	ErrNullArgument = errors.New("mcpsession: a required pointer argument was NULL")

	// ErrInvalidConfig (MSC_ERR_INVALID_CONFIG) is returned by New when the
	// settings cannot work: MaxSessions 0, an unknown OnFull, a negative
	// duration or count, a RateLimit without a RateWindow, or values above
	// the library's limits (a rate limit over 1,048,576, an event queue over
	// 16,777,216).
	ErrInvalidConfig = errors.New("mcpsession: invalid configuration")

	// ErrAtCapacity (MSC_ERR_AT_CAPACITY) is returned by Create when the
	// registry is full and OnFull is Reject. It is wrapped in a *CreateError
	// carrying RetryAfter. HTTP 503 with Retry-After.
	ErrAtCapacity = errors.New("mcpsession: session capacity reached")

	// ErrRateLimited (MSC_ERR_RATE_LIMITED) is returned by Create when the
	// creation rate limit is exhausted. It is wrapped in a *CreateError
	// carrying RetryAfter. HTTP 429 with Retry-After.
	ErrRateLimited = errors.New("mcpsession: session creation rate limit reached")

	// ErrNotFound (MSC_ERR_NOT_FOUND): no open session with this id is
	// visible to the caller. Unknown, closed, evicted, expired and bound to
	// another principal are deliberately indistinguishable. HTTP 404 (the
	// client re-initializes).
	ErrNotFound = errors.New("mcpsession: session not found")

	// ErrMalformedID (MSC_ERR_MALFORMED_ID): the id is not a canonical
	// session id (36 characters, lowercase UUID v4 text). An empty id (a
	// missing header) is malformed too. HTTP 400.
	ErrMalformedID = errors.New("mcpsession: malformed session id")

	// ErrBufferTooSmall corresponds to MSC_ERR_BUFFER_TOO_SMALL. The binding
	// always passes buffers of the right size, so seeing it means a bug in
	// the binding.
	ErrBufferTooSmall = errors.New("mcpsession: output buffer too small")

	// ErrInternal (MSC_ERR_INTERNAL): a failure inside the library (a caught
	// panic, or no OS randomness for ids), or a status code this binding
	// does not know. HTTP 500.
	ErrInternal = errors.New("mcpsession: internal error")

	// ErrPrincipalFull (MSC_ERR_PRINCIPAL_FULL) is returned by Create when
	// the principal (or the anonymous class) holds MaxSessionsPerPrincipal
	// sessions and OnFull is Reject. Wrapped in a *CreateError carrying
	// RetryAfter. HTTP 429 with Retry-After.
	ErrPrincipalFull = errors.New("mcpsession: this principal's session limit reached")

	// ErrPrincipalRateLimited (MSC_ERR_PRINCIPAL_RATE_LIMITED) is returned
	// by Create when the principal's creation rate limit is exhausted.
	// Wrapped in a *CreateError carrying RetryAfter. HTTP 429 with
	// Retry-After.
	ErrPrincipalRateLimited = errors.New("mcpsession: this principal's session creation rate limit reached")

	// ErrClosed is returned by every method of a Registry after Close or
	// Shutdown, and of a Fleet after Close. HTTP 503 (the server is
	// shutting down).
	ErrClosed = errors.New("mcpsession: registry is closed")

	// ErrStoreUnavailable (MSC_ERR_STORE_UNAVAILABLE): fleet mode only:
	// Redis is unreachable, restarting or slower than the call timeout.
	// Fleet methods return it inside an *UnavailableError carrying
	// RetryAfter. HTTP 503 with Retry-After.
	ErrStoreUnavailable = errors.New("mcpsession: the session store (Redis) is unavailable")
)

// CreateError is the error Create returns when a creation is refused but
// can succeed later: its Err is ErrAtCapacity, ErrRateLimited,
// ErrPrincipalFull or ErrPrincipalRateLimited, so
// errors.Is(err, ErrAtCapacity) and errors.Is(err, ErrRateLimited) work on
// it, and errors.As gives access to RetryAfter.
type CreateError struct {
	// Err is the sentinel: ErrAtCapacity, ErrRateLimited, ErrPrincipalFull
	// or ErrPrincipalRateLimited.
	Err error
	// RetryAfter is how long to wait before a retry can succeed, for a
	// Retry-After header: exact for ErrRateLimited and
	// ErrPrincipalRateLimited (millisecond resolution), a fixed one second
	// for ErrAtCapacity and ErrPrincipalFull.
	RetryAfter time.Duration
}

// Error describes the refusal and its retry delay.
func (e *CreateError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.RetryAfter)
}

// Unwrap returns the sentinel (ErrAtCapacity, ErrRateLimited,
// ErrPrincipalFull or ErrPrincipalRateLimited).
func (e *CreateError) Unwrap() error { return e.Err }

// RetryAfter reports the retry delay of a refused Create (an error that is,
// or wraps, a *CreateError) or of an unavailable fleet store (an
// *UnavailableError), and whether there is one.
func RetryAfter(err error) (time.Duration, bool) {
	var ce *CreateError
	if errors.As(err, &ce) {
		return ce.RetryAfter, true
	}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return ue.RetryAfter, true
	}
	return 0, false
}

// RetryAfterHeader formats the retry delay of err as a Retry-After header
// value: whole seconds, rounded up, at least 1. It returns "" if err carries
// no retry delay.
func RetryAfterHeader(err error) string {
	d, ok := RetryAfter(err)
	if !ok {
		return ""
	}
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return strconv.FormatInt(secs, 10)
}

// HTTPStatus maps an error from a Registry method to the HTTP status code of
// MCP's Streamable HTTP transport:
//
//	nil             200 OK
//	ErrMalformedID  400 Bad Request (also a missing Mcp-Session-Id header)
//	ErrNotFound     404 Not Found (the client re-initializes)
//	ErrRateLimited  429 Too Many Requests (send Retry-After)
//	ErrPrincipalFull, ErrPrincipalRateLimited
//	                429 Too Many Requests (send Retry-After)
//	ErrAtCapacity   503 Service Unavailable (send Retry-After)
//	ErrClosed       503 Service Unavailable (shutting down)
//	ErrStoreUnavailable 503 Service Unavailable (fleet mode; send Retry-After)
//	anything else   500 Internal Server Error
//
// Wrapped errors are recognized (errors.Is).
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrMalformedID):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrPrincipalFull),
		errors.Is(err, ErrPrincipalRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrAtCapacity), errors.Is(err, ErrClosed), errors.Is(err, ErrStoreUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// statusError maps an msc_status code to its sentinel; nil for MSC_OK.
func statusError(code int) error {
	switch code {
	case 0:
		return nil
	case 1:
		return ErrNullArgument
	case 2:
		return ErrInvalidConfig
	case 3:
		return ErrAtCapacity
	case 4:
		return ErrRateLimited
	case 5:
		return ErrNotFound
	case 6:
		return ErrMalformedID
	case 7:
		return ErrBufferTooSmall
	case 8:
		return ErrInternal
	case 9: // MSC_ERR_SHUT_DOWN: the registry was shut down
		return ErrClosed
	case 10:
		return ErrPrincipalFull
	case 11:
		return ErrPrincipalRateLimited
	case 12: // MSC_ERR_STORE_UNAVAILABLE (fleet mode)
		return ErrStoreUnavailable
	default:
		return fmt.Errorf("%w: unknown status %d", ErrInternal, code)
	}
}

// CloseReason says why a session was closed. The numbers match the C ABI's
// msc_close_reason.
type CloseReason int

// The close reasons.
const (
	// ReasonClosed: closed by Registry.Close.
	ReasonClosed CloseReason = 0
	// ReasonEvicted: evicted (FIFO, the oldest) to make room for a new
	// session, with OnFull EvictOldest.
	ReasonEvicted CloseReason = 1
	// ReasonIdleTimeout: no Get found it for Config.IdleTimeout.
	ReasonIdleTimeout CloseReason = 2
	// ReasonMaxLifetime: older than Config.MaxLifetime.
	ReasonMaxLifetime CloseReason = 3
	// ReasonInitTimeout: not confirmed (Registry.Confirm) within
	// Config.InitTimeout of its creation.
	ReasonInitTimeout CloseReason = 4
	// ReasonShutdown: still open when the registry was freed (reported by
	// Shutdown).
	ReasonShutdown CloseReason = 5
	// ReasonRedeemed: taken for single use by Take.
	ReasonRedeemed CloseReason = 6
)

// String returns the reason in lowercase words ("closed", "evicted", "idle
// timeout", "max lifetime", "init timeout", "shutdown"), or
// "CloseReason(n)" for an unknown value.
func (r CloseReason) String() string {
	switch r {
	case ReasonClosed:
		return "closed"
	case ReasonEvicted:
		return "evicted"
	case ReasonIdleTimeout:
		return "idle timeout"
	case ReasonMaxLifetime:
		return "max lifetime"
	case ReasonInitTimeout:
		return "init timeout"
	case ReasonShutdown:
		return "shutdown"
	case ReasonRedeemed:
		return "redeemed"
	default:
		return "CloseReason(" + strconv.Itoa(int(r)) + ")"
	}
}
