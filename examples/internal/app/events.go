package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// tickEvery is the heartbeat of the event stream: it shows the stream is
// alive and lets a proxy or the server notice a client that went away.
const tickEvery = 5 * time.Second

// Stream serves the server-sent-event stream of GET /events for session
// s, until ctx ends (the client left, or the server shuts down) or the
// session stops being allowed: revoked by any instance, by the provider
// (back-channel logout), or expired. Then it sends one "revoked" event and
// returns, which closes the response.
//
// When only the access part of s expires, the stream is closed without an
// event: EventSource reconnects by itself (after the retry delay), and the
// reconnection goes through the guard, which renews the session at the
// provider or refuses it, as for any request.
//
// Events: "hello" {instance, sub, session} once; "tick" {time} every few
// seconds; "revoked" {error, scope, reauth} at the end.
func (a *App) Stream(ctx context.Context, w http.ResponseWriter, s *middleware.Session) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)

	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// Reconnect quickly after a server restart; a revoked session's
	// reconnection is refused by the guard, which ends the EventSource.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if send("hello", map[string]string{"instance": a.cfg.Name, "sub": s.Subject, "session": s.ID}) != nil {
		return
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the watcher
	revoked := a.Guard.Watch(ctx, s)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-revoked:
			if !ok {
				return // ctx ended
			}
			if d.Kind == middleware.DecisionAccessExpired {
				a.log.Debug("event stream closed for renewal: access part expired", "session", s.ID)
				return
			}
			a.log.Info("event stream closed: session no longer allowed", "session", s.ID, "sub", s.Subject, "decision", d.Kind.String())
			_ = send("revoked", map[string]string{
				"error": d.Kind.String(), "scope": d.Scope.Kind.String(), "reauth": d.Policy.String(),
			})
			return
		case t := <-tick.C:
			if send("tick", map[string]string{"time": t.UTC().Format(time.RFC3339)}) != nil {
				return
			}
		}
	}
}
