package fencetext

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// Encode returns the text form of f (see the package documentation). It
// keeps times to the millisecond; a store that answers from memory should
// truncate them the same way so that its answers match.
func Encode(f middleware.Fence) string {
	var b strings.Builder
	b.Grow(64 + len(f.Reason))
	b.WriteString(fenceV2)
	for _, n := range [...]uint64{f.Gen, f.Reserved, f.Reload} {
		b.WriteString(strconv.FormatUint(n, 10))
		b.WriteByte(':')
	}
	b.WriteString(strconv.FormatInt(unixMilli(f.BumpedAt), 10))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(int(f.Policy)))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(unixMilli(f.PendingAt), 10))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(int(f.PendingPolicy)))
	b.WriteByte(':')
	b.WriteString(f.Reason)
	return b.String()
}

// fenceV2 prefixes the current text form.
const fenceV2 = "v2:"

// Decode parses the text form. It does not allocate, except that a
// non-empty reason shares memory with s. A malformed value returns
// ok=false; stores must treat that as a store error (fail closed, wrapping
// [middleware.ErrStoreUnavailable]), never as a zero fence.
//
// Values written before Reserved existed ("gen:reload:bumpedAtMs:policy:
// pendingAtMs:pendingPolicy:reason") are read with Reserved = Gen, plus one
// while an announcement is pending: the generation that announcement had
// reserved under the old rules.
func Decode(s string) (f middleware.Fence, ok bool) {
	v2 := strings.HasPrefix(s, fenceV2)
	n := 6
	if v2 {
		s, n = s[len(fenceV2):], 7
	}
	// Hand-rolled digits: this runs for every fence of every request, and
	// strconv.ParseUint's generality costs twice as much here.
	var fields [7]uint64
	for i := 0; i < n; i++ {
		var v uint64
		j := 0
		for ; j < len(s) && s[j] != ':'; j++ {
			c := uint64(s[j] - '0')
			if c > 9 || v > (math.MaxUint64-c)/10 {
				return middleware.Fence{}, false // not a digit, or overflow
			}
			v = v*10 + c
		}
		if j == 0 || j == len(s) || (j > 1 && s[0] == '0') {
			return middleware.Fence{}, false // empty, unterminated, or not canonical
		}
		fields[i] = v
		s = s[j+1:]
	}
	if !v2 {
		// gen:reload:... → gen:reserved:reload:...
		reserved := fields[0]
		if fields[4] != 0 {
			reserved++
		}
		copy(fields[2:], fields[1:6])
		fields[1] = reserved
	}
	if fields[4] > uint64(middleware.PolicyMFA) || fields[6] > uint64(middleware.PolicyMFA) ||
		fields[3] > maxMilli || fields[5] > maxMilli || fields[1] < fields[0] {
		return middleware.Fence{}, false
	}
	f.Gen = fields[0]
	f.Reserved = fields[1]
	f.Reload = fields[2]
	f.BumpedAt = fromMilli(int64(fields[3]))
	f.Policy = middleware.Policy(fields[4])
	f.PendingAt = fromMilli(int64(fields[5]))
	f.PendingPolicy = middleware.Policy(fields[6])
	f.Reason = s
	return f, true
}

// maxMilli keeps decoded times within a range time.Time handles exactly
// (year ~ 2255); anything larger is corrupt data. It is the bound
// middleware.ApplyBump puts on an announcement's time, so every fence a
// bump produces has a text form.
const maxMilli = 1 << 43

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
