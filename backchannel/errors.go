package backchannel

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrInvalidToken is wrapped by every [*InvalidTokenError]: the logout
	// token (or the request carrying it) failed validation. The receiver
	// answers 400 and applies nothing.
	ErrInvalidToken = errors.New("backchannel: invalid logout token")
	// ErrKeysUnavailable reports that the issuer's signing keys could not
	// be fetched (discovery or JWKS failed or timed out), so the token
	// could be neither accepted nor refused. The receiver answers 503 with
	// Retry-After so that the provider tries again.
	ErrKeysUnavailable = errors.New("backchannel: issuer keys unavailable")
)

// InvalidTokenError says why a logout request was refused. Code is a
// stable, machine-readable reason (the list is in docs/backchannel.md and
// is also the "reason" attribute of the log record); Description is a
// fixed English sentence that never contains data from the request, so it
// is safe to send back as error_description.
type InvalidTokenError struct {
	Code        string
	Description string
}

// Error returns the code and description, for logs.
func (e *InvalidTokenError) Error() string {
	return "backchannel: invalid logout token (" + e.Code + "): " + e.Description
}

// Unwrap makes errors.Is(err, ErrInvalidToken) true.
func (e *InvalidTokenError) Unwrap() error { return ErrInvalidToken }

// UnavailableError is returned when the logout could not be completed for
// a reason on our side (keys or store unavailable): the provider should
// retry after RetryAfter. Err wraps [ErrKeysUnavailable] or
// middleware.ErrStoreUnavailable.
type UnavailableError struct {
	RetryAfter time.Duration
	Err        error
}

// Error describes the failure and its cause, for logs (it may contain
// details of the store or the provider; never send it to a client).
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("backchannel: logout not applied, retry after %v: %v", e.RetryAfter, e.Err)
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Reason codes. They are stable: logs, metrics and tests key on them.
// Request-level codes come first, then token codes in the order the checks
// run.
const (
	codeMethod          = "method_not_allowed"
	codeContentType     = "unsupported_content_type"
	codeBodyTooLarge    = "body_too_large"
	codeMalformedBody   = "malformed_body"
	codeMissingToken    = "missing_logout_token"
	codeDuplicateToken  = "duplicate_logout_token"
	codeEncrypted       = "encrypted_token"
	codeMalformed       = "malformed_token"
	codeAlg             = "alg_not_allowed"
	codeTyp             = "typ_not_allowed"
	codeClaimType       = "invalid_claim"
	codeIssMissing      = "iss_missing"
	codeIssuer          = "unknown_issuer"
	codeAudMissing      = "aud_missing"
	codeAudience        = "audience_mismatch"
	codeAZP             = "azp_mismatch"
	codeIatMissing      = "iat_missing"
	codeIatFuture       = "iat_in_future"
	codeIatOld          = "iat_too_old"
	codeExpMissing      = "exp_missing"
	codeExpired         = "expired"
	codeJTIMissing      = "jti_missing"
	codeEventsMissing   = "events_missing"
	codeEventMissing    = "logout_event_missing"
	codeEventNotObject  = "logout_event_not_object"
	codeNonce           = "nonce_present"
	codeSubSIDMissing   = "sub_and_sid_missing"
	codeSIDRequired     = "sid_required"
	codeUnknownKey      = "unknown_key"
	codeSignature       = "bad_signature"
	codeKeysUnavailable = "keys_unavailable"
	codeStore           = "store_unavailable"
	codeInternal        = "internal_error"
)

// invalid builds the error for a refused token or request.
func invalid(code, desc string) *InvalidTokenError {
	return &InvalidTokenError{Code: code, Description: desc}
}
