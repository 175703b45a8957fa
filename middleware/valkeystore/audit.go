package valkeystore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

var _ middleware.AuditLog = (*Store)(nil)

// DefaultAuditCap is the approximate number of audit entries a store keeps
// when [Config].AuditCap is zero.
const DefaultAuditCap = 100000

// Page sizes of [Store.Audit], as the [middleware.AuditQuery] contract
// states them.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 500
)

// auditField is the one field of a stream entry: the entry as JSON.
const auditField = "e"

// errCursor reports an [middleware.AuditQuery].Before that is not a stream
// ID. It is checked here, before anything is sent, because cursors come
// from administrators' requests.
var errCursor = fmt.Errorf("valkeystore: %w", middleware.ErrInvalidCursor)

// AppendAudit implements [middleware.AuditLog] with one XADD <prefix>audit
// MAXLEN ~ cap * e <json>. The server assigns the entry's ID (the stream ID,
// "<server unix ms>-<n>"), which orders entries across every instance.
// When e.Time is zero the entry's time is the millisecond of its ID, the
// server's clock; it is stored as zero and derived from the ID when read.
//
// Trimming is approximate, as with every MAXLEN ~: the stream keeps at
// least the newest [Config].AuditCap entries and at most one stream node
// (stream-node-max-entries, 100 by default) more, which lets the server
// drop whole nodes in O(1). Errors wrap [middleware.ErrStoreUnavailable];
// after an error the entry may or may not have been appended. The command
// is not retried, so an entry is never appended twice by the client.
func (s *Store) AppendAudit(ctx context.Context, e middleware.AuditEntry) (middleware.AuditEntry, error) {
	e.ID = ""
	body, err := json.Marshal(e)
	if err != nil {
		return middleware.AuditEntry{}, fmt.Errorf("valkeystore: append audit: %w", err)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	id, err := s.client.Do(ctx, s.client.B().Xadd().Key(s.auditKey).
		Maxlen().Almost().Threshold(strconv.Itoa(s.auditCap)).Id("*").
		FieldValue().FieldValue(auditField, string(body)).Build()).ToString()
	if err != nil {
		return middleware.AuditEntry{}, unavailable("append audit", err)
	}
	if e.Time.IsZero() {
		e.Time = streamTime(id)
	}
	e.ID = id
	return e, nil
}

// Audit implements [middleware.AuditLog] with one XREVRANGE <prefix>audit
// (<Before> - COUNT limit+1: up to q.Limit entries (100 when zero,
// negative or over 500) older than the entry q.Before names, newest first,
// and the ID of the last one returned as the next cursor when older
// entries remain. A cursor whose entry was trimmed since still pages.
// Cost: O(page size), whatever the length of the stream.
//
// Errors: a q.Before that is not a stream ID ("<ms>-<n>") is refused
// before anything is sent; an entry that does not decode and every
// failure of the server or network wrap [middleware.ErrStoreUnavailable].
func (s *Store) Audit(ctx context.Context, q middleware.AuditQuery) ([]middleware.AuditEntry, string, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxAuditLimit {
		limit = defaultAuditLimit
	}
	end := "+"
	if q.Before != "" {
		if !validStreamID(q.Before) {
			return nil, "", fmt.Errorf("%w %q", errCursor, q.Before)
		}
		end = "(" + q.Before
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	raw, err := s.client.Do(ctx, s.client.B().Xrevrange().Key(s.auditKey).End(end).Start("-").
		Count(int64(limit)+1).Build()).AsXRange()
	if err != nil {
		return nil, "", unavailable("read audit", err)
	}
	more := len(raw) > limit
	if more {
		raw = raw[:limit]
	}
	out := make([]middleware.AuditEntry, 0, len(raw))
	for _, r := range raw {
		var e middleware.AuditEntry
		body, ok := r.FieldValues[auditField]
		if !ok {
			return nil, "", fmt.Errorf("valkeystore: audit entry %s has no field %q: %w", r.ID, auditField, middleware.ErrStoreUnavailable)
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, "", fmt.Errorf("valkeystore: audit entry %s does not decode: %w: %w", r.ID, middleware.ErrStoreUnavailable, err)
		}
		e.ID = r.ID
		if e.Time.IsZero() {
			e.Time = streamTime(r.ID)
		}
		out = append(out, e)
	}
	next := ""
	if more {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// validStreamID reports whether id has the form of a stream ID the server
// assigns, "<ms>-<n>", both parts unsigned 64-bit decimals without sign or
// padding.
func validStreamID(id string) bool {
	ms, n, ok := strings.Cut(id, "-")
	return ok && validUint(ms) && validUint(n)
}

func validUint(s string) bool {
	v, err := strconv.ParseUint(s, 10, 64)
	return err == nil && strconv.FormatUint(v, 10) == s
}

// streamTime returns the server time encoded in a stream ID, in UTC.
func streamTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
