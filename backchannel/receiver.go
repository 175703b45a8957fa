package backchannel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/sessionfence/sessionfence/middleware"
)

// Receiver is the back-channel logout endpoint: an [http.Handler] that
// validates logout tokens and revokes what they name by bumping fences.
// Mount it at the URL registered as backchannel_logout_uri; with net/http
// the Receiver is the handler itself, with gin wrap it with
// ginadapter.BackchannelHandler. Build it with [New]. It is safe for
// concurrent use.
type Receiver struct {
	cfg     Config
	store   middleware.Store
	replay  middleware.Replay
	writer  *middleware.Writer
	issuers map[string]*issuer
	algs    []jose.SignatureAlgorithm // union of the issuers' allow-lists
	log     *slog.Logger
	now     func() time.Time
}

// Result is what [Receiver.Logout] did with a valid token.
type Result struct {
	// Event is the token's content and the scopes bumped.
	Event Event
	// Replay reports that the token (same iss and jti) was already
	// applied: nothing was done again.
	Replay bool
}

// storeRetryAfter is the Retry-After sent when the store failed.
const storeRetryAfter = 5 * time.Second

// ServeHTTP answers one back-channel logout request (§2.5, §2.8):
//
//   - POST with Content-Type application/x-www-form-urlencoded and exactly
//     one logout_token parameter in the body (the query string is ignored);
//     other methods get 405 with Allow: POST.
//   - 200 when the token was applied or is a replay of one that was.
//   - 400 with {"error":"invalid_request","error_description":…} for any
//     malformed request or invalid token; nothing is changed.
//   - 503 with Retry-After when keys or store are unavailable: nothing
//     was applied for sure, and the provider's retry will be.
//
// Every response carries Cache-Control: no-store. Bad input never gets a
// 5xx; a 500 would mean a bug in this package (logged at error level).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if req.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		r.logRequest(req.Context(), codeMethod)
		writeError(w, http.StatusMethodNotAllowed, invalid(codeMethod, "use POST"))
		return
	}
	raw, err := r.readToken(w, req)
	if err != nil {
		r.logRequest(req.Context(), err.Code)
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.Timeout)
	defer cancel()
	_, lerr := r.Logout(ctx, raw)
	var ie *InvalidTokenError
	var ue *UnavailableError
	switch {
	case lerr == nil:
		w.WriteHeader(http.StatusOK)
	case errors.As(lerr, &ie):
		writeError(w, http.StatusBadRequest, ie)
	case errors.As(lerr, &ue):
		secs := int((ue.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
		writeJSON(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the logout could not be applied now; retry later")
	default:
		writeJSON(w, http.StatusInternalServerError, "server_error", "the logout could not be applied")
	}
}

// readToken extracts the single logout_token from a form body. The body
// is read whole (bounded by MaxBodyBytes) and parsed with url.ParseQuery
// rather than Request.ParseForm, so query-string parameters can never
// stand in for body ones and a duplicate parameter is seen and refused:
// which of two tokens to believe is not a choice to make silently.
func (r *Receiver) readToken(w http.ResponseWriter, req *http.Request) (string, *InvalidTokenError) {
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", invalid(codeContentType, "the body must be application/x-www-form-urlencoded")
	}
	if req.ContentLength > r.cfg.MaxBodyBytes {
		return "", invalid(codeBodyTooLarge, "the request body is too large")
	}
	body, err := readBody(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes), req.ContentLength)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", invalid(codeBodyTooLarge, "the request body is too large")
		}
		return "", invalid(codeMalformedBody, "the request body could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", invalid(codeMalformedBody, "the request body is not valid form encoding")
	}
	switch v := form["logout_token"]; {
	case len(v) > 1:
		return "", invalid(codeDuplicateToken, "the logout_token parameter appears more than once")
	case len(v) == 0 || v[0] == "":
		return "", invalid(codeMissingToken, "the logout_token parameter is missing")
	default:
		return v[0], nil
	}
}

// readBody reads all of rc into a buffer sized from Content-Length when
// the client sent one (already checked against the limit), so a typical
// request is read with one allocation.
func readBody(rc io.Reader, length int64) ([]byte, error) {
	if length <= 0 {
		return io.ReadAll(rc)
	}
	buf := make([]byte, 0, length+1) // +1: EOF is seen without growing
	for {
		n, err := rc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // longer than announced: grow
		}
	}
}

// Logout validates raw (see [Receiver.Verify]), refuses replays, revokes
// what the token names and calls Config.OnLogout. It is the handler
// without HTTP, for applications that receive logout tokens another way;
// only ctx bounds it (the handler adds Config.Timeout). It writes one log
// record per call.
//
// Revocation: a sid revokes the IdP session (issuer, sid), a tombstone
// kept for the guard's IdPSessionTTL, so a login of that session that
// completes later is refused too; a token without sid (or any token, with
// EscalateToSubject) revokes the subject (issuer, sub), every session of
// that user at that issuer. Each bump carries Config.Policy, so the next
// login must be a fresh one.
//
// Errors: [*InvalidTokenError] (nothing changed), [*UnavailableError]
// (keys or store; retry). A replay is not an error: Result.Replay is set.
func (r *Receiver) Logout(ctx context.Context, raw string) (Result, error) {
	e, err := r.verify(ctx, raw)
	if err != nil {
		r.logToken(ctx, e, err, false)
		return Result{}, err
	}
	res, err := r.apply(ctx, e)
	r.logToken(ctx, res.Event, err, res.Replay)
	if err != nil {
		return Result{}, err
	}
	if !res.Replay && r.cfg.OnLogout != nil {
		r.cfg.OnLogout(ctx, res.Event)
	}
	return res, nil
}

// apply records the token as seen and bumps its fences.
//
// # Why the order is claim, bump, then mark done
//
// Two promises pull in opposite directions: a token whose bump failed
// (store down: 503) must work when the provider retries it, and a replay
// must never apply twice (a second bump of a subject fence would sign out
// the session its user opened after the first). The store only offers
// Remember, an atomic insert-if-absent with no delete, so "seen" cannot
// be undone after a failed bump.
//
//   - Remember, then bump: a failed bump leaves the jti remembered, the
//     retry is taken for a replay, and the revocation is lost.
//   - Bump, then Remember: never loses a revocation, but applies every
//     replay again before noticing it.
//
// So each (iss, jti) gets replaySlots remembered ids, "attempt slots". A
// delivery walks them with Remember and owns the first one it inserts;
// finding them all taken means the token is done, a replay. Before
// bumping, the owner of slot i knows only that attempts 0..i-1 did not
// finish (failed, or are still running); after a successful bump it takes
// every remaining slot, so all later deliveries are replays. A delivery
// whose bump fails leaves the later slots free, so the provider's retry
// owns the next slot and bumps. Result:
//
//   - the normal path applies once: replays find every slot taken;
//   - up to replaySlots-1 failed attempts in a row can be retried; only a
//     further retry after that many failures is taken for a replay (each
//     failure needs the store to fail between two calls that just
//     succeeded, and is logged at error level);
//   - a rare double application remains possible, and harmless: two
//     concurrent deliveries of one token (both bump within milliseconds,
//     no session can be created in between), or a store failure while
//     marking slots after a successful bump (a later replay bumps again;
//     logged). A double bump only advances a generation twice.
//
// When Remember itself fails nothing was claimed and nothing bumped: 503,
// and the retry starts afresh.
func (r *Receiver) apply(ctx context.Context, e Event) (Result, error) {
	ttl := r.replayTTL(e)
	key := replayKey(e.Issuer, e.JTI)
	slot := -1
	for i := range replaySlots {
		first, err := r.replay.Remember(ctx, slotID(key, i), ttl)
		if err != nil {
			return Result{Event: e}, storeError(err)
		}
		if first {
			slot = i
			break
		}
	}
	if slot < 0 {
		return Result{Event: e, Replay: true}, nil
	}
	if slot > 0 {
		r.log.LogAttrs(ctx, slog.LevelWarn, "sessionfence: back-channel logout retried after an unfinished attempt",
			slog.String("iss", e.Issuer), slog.String("jti", clip(e.JTI)), slog.Int("attempt", slot+1))
	}
	scopes := r.scopes(e)
	for _, sc := range scopes {
		// Through the guard's fence writer, which applies the expiry rule
		// (an IdP-session tombstone outlives every token the provider may
		// still issue for that sid; a subject fence is kept for ever) and
		// records the audit entry.
		_, err := r.writer.Write(ctx, middleware.Change{
			Scope: sc, Kind: middleware.BumpRevoke, Policy: r.cfg.Policy, Reason: r.cfg.Reason,
			Actor: "backchannel:" + e.Issuer, Action: "backchannel_logout",
		})
		if err != nil {
			if slot == replaySlots-1 {
				// No slot is left for a retry: this revocation is lost
				// unless an operator acts.
				r.log.LogAttrs(ctx, slog.LevelError, "sessionfence: back-channel logout NOT applied and no retry is left",
					slog.String("iss", e.Issuer), slog.String("jti", clip(e.JTI)), slog.String("sub", clip(e.Subject)),
					slog.String("sid", clip(e.SID)), slog.String("cause", err.Error()))
			}
			return Result{Event: e}, storeError(err)
		}
	}
	e.Scopes = scopes
	for i := slot + 1; i < replaySlots; i++ {
		if _, err := r.replay.Remember(ctx, slotID(key, i), ttl); err != nil {
			// The logout is applied; answering 503 now would make the
			// provider resend a token that is already done. A replay may
			// apply it once more (harmless, see above).
			r.log.LogAttrs(ctx, slog.LevelWarn, "sessionfence: back-channel logout applied but not fully recorded as seen",
				slog.String("iss", e.Issuer), slog.String("jti", clip(e.JTI)), slog.String("cause", err.Error()))
			break
		}
	}
	return Result{Event: e}, nil
}

// scopes lists the fences a token revokes.
func (r *Receiver) scopes(e Event) []middleware.Scope {
	var out []middleware.Scope
	if e.SID != "" {
		out = append(out, middleware.IdPSessionScope(e.Issuer, e.SID))
	}
	if e.Subject != "" && (e.SID == "" || r.cfg.EscalateToSubject) {
		out = append(out, middleware.SubjectScope(e.Issuer, e.Subject))
	}
	return out
}

func storeError(err error) error {
	if !errors.Is(err, middleware.ErrStoreUnavailable) {
		err = fmt.Errorf("%w: %w", middleware.ErrStoreUnavailable, err)
	}
	return &UnavailableError{RetryAfter: storeRetryAfter, Err: err}
}

// writeError writes a 4xx refusal with the error's fixed description.
func writeError(w http.ResponseWriter, status int, e *InvalidTokenError) {
	writeJSON(w, status, "invalid_request", e.Description)
}

// writeJSON writes an OAuth-style error body (§2.8 allows error and
// error_description as in RFC 6749 §5.2). The description is always one
// of this package's fixed sentences: the request is never echoed.
func writeJSON(w http.ResponseWriter, status int, code, desc string) {
	body, _ := json.Marshal(errorBody{Error: code, Description: desc}) // cannot fail for two strings
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}
