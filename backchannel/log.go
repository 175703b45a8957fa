package backchannel

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/sessionfence/sessionfence/middleware"
)

// Outcomes, the "outcome" attribute of every log record.
const (
	outcomeApplied     = "applied"     // fences bumped
	outcomeReplay      = "replay"      // valid token seen before: 200, nothing done
	outcomeRejected    = "rejected"    // 400 (or 405)
	outcomeUnavailable = "unavailable" // 503: keys or store
	outcomeError       = "error"       // 500: a bug
)

// logMsg is the message of every record the receiver writes per request.
const logMsg = "sessionfence: back-channel logout"

// clipLen bounds a value copied from a token into a log record: before the
// signature is verified, it is attacker-chosen.
const clipLen = 128

func clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	return strings.ToValidUTF8(s[:clipLen], "") + "…"
}

// logRequest logs a request refused before any token was read.
func (r *Receiver) logRequest(ctx context.Context, code string) {
	r.observe(outcomeRejected + ":" + code)
	r.log.LogAttrs(ctx, slog.LevelWarn, logMsg,
		slog.String("outcome", outcomeRejected), slog.String("reason", code))
}

// observe reports an outcome to the guard's observer when it counts
// back-channel results (see middleware.BackchannelObserver).
func (r *Receiver) observe(result string) {
	if o, ok := r.cfg.Guard.Config().Observer.(middleware.BackchannelObserver); ok {
		o.Backchannel(result)
	}
}

// logToken writes the record for one token: never the raw token; iss,
// jti, sub and sid as values (clipped), the reason code, and for applied
// tokens the scopes bumped. Refusals log at warn (they may be attacks or
// a misconfigured provider), store and key outages at error.
func (r *Receiver) logToken(ctx context.Context, e Event, err error, replay bool) {
	level := slog.LevelInfo
	var ie *InvalidTokenError
	var ue *UnavailableError
	switch {
	case err == nil:
	case errors.As(err, &ie):
		level = slog.LevelWarn
	default:
		level = slog.LevelError
	}
	switch {
	case err == nil && replay:
		r.observe(outcomeReplay)
	case err == nil:
		r.observe(outcomeApplied)
	case ie != nil:
		r.observe(outcomeRejected + ":" + ie.Code)
	case errors.As(err, &ue):
		r.observe(outcomeUnavailable)
	default:
		r.observe(outcomeError)
	}
	if !r.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	switch {
	case err == nil && replay:
		attrs = append(attrs, slog.String("outcome", outcomeReplay), slog.String("reason", "replay"))
	case err == nil:
		attrs = append(attrs, slog.String("outcome", outcomeApplied), slog.String("reason", "ok"))
	case ie != nil:
		attrs = append(attrs, slog.String("outcome", outcomeRejected), slog.String("reason", ie.Code))
	case errors.As(err, &ue):
		code := codeStore
		if errors.Is(err, ErrKeysUnavailable) {
			code = codeKeysUnavailable
		}
		attrs = append(attrs, slog.String("outcome", outcomeUnavailable), slog.String("reason", code),
			slog.String("cause", err.Error()))
	default:
		attrs = append(attrs, slog.String("outcome", outcomeError), slog.String("reason", codeInternal),
			slog.String("cause", err.Error()))
	}
	if e.Issuer != "" {
		attrs = append(attrs, slog.String("iss", clip(e.Issuer)))
	}
	if e.JTI != "" {
		attrs = append(attrs, slog.String("jti", clip(e.JTI)))
	}
	if e.Subject != "" {
		attrs = append(attrs, slog.String("sub", clip(e.Subject)))
	}
	if e.SID != "" {
		attrs = append(attrs, slog.String("sid", clip(e.SID)))
	}
	if len(e.Scopes) > 0 {
		names := make([]string, len(e.Scopes))
		for i, s := range e.Scopes {
			names[i] = s.Kind.String()
		}
		attrs = append(attrs, slog.String("scopes", strings.Join(names, ",")))
	}
	r.log.LogAttrs(ctx, level, logMsg, attrs...)
}
