package valkeystore

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestLazyDeadlineExpiresLikeWithDeadline(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	c := &lazyDeadline{parent: parent, deadline: time.Now().Add(20 * time.Millisecond)}
	defer c.release()
	if d, ok := c.Deadline(); !ok || !d.Equal(c.deadline) {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("Value does not reach the parent")
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err() before the deadline = %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() after the deadline = %v", c.Err())
	}
}

func TestLazyDeadlineFollowsParentCancellation(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := &lazyDeadline{parent: parent, deadline: time.Now().Add(time.Hour)}
	defer c.release()
	done := c.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the parent was cancelled")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err() = %v, want Canceled", c.Err())
	}
}

func TestLazyDeadlineReleasedUnusedReadsAsFinished(t *testing.T) {
	c := &lazyDeadline{parent: context.Background(), deadline: time.Now().Add(time.Hour)}
	c.release()
	select {
	case <-c.Done():
	default:
		t.Fatal("a released context is not done")
	}
	if c.Err() == nil {
		t.Fatal("a released context has no error")
	}
}

func TestCheckPrefix(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		ok     bool
	}{
		{"default prefix", DefaultPrefix, true},
		{"tag in the middle", "app:{fences}:", true},
		{"one-byte tag", "{x}", true},
		{"no tag", "sessionfence:", false},
		{"empty tag", "{}:", false},
		{"empty first tag before a good one", "{}{x}:", false},
		{"unclosed brace", "{x:", false},
		{"closing brace only", "x}:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPrefix(tt.prefix)
			if (err == nil) != tt.ok {
				t.Fatalf("checkPrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}
