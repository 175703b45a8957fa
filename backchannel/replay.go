package backchannel

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// replaySlots is the number of attempt slots per (iss, jti); see
// [Receiver.apply] for why there are several. Three tolerate two failed
// attempts in a row, at the cost of three Remember calls per applied
// token (a back-channel logout is rare; this is not a hot path).
const replaySlots = 3

// replayKey derives the replay identifier of a token from (iss, jti):
// "bcl:" and the base64url SHA-256 of iss, a NUL, and jti. Hashing gives a
// fixed-length key whatever the provider puts in jti, free of characters
// a store might treat specially (Valkey hash tags), and the NUL keeps two
// issuers' jtis apart ("a"+"bc" vs "ab"+"c").
func replayKey(iss, jti string) string {
	h := sha256.New()
	h.Write([]byte(iss))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var sum [sha256.Size]byte
	return "bcl:" + base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0]))
}

// slotID is the id remembered for attempt slot i of key.
func slotID(key string, i int) string { return key + "#" + strconv.Itoa(i) }

// replayTTL is how long a token's jti must be remembered: until no
// instance would accept the token any more. That is exp (or iat + MaxAge,
// whichever is earlier, or the latter alone without exp) plus Skew, the
// limits checkTimes applies, plus Skew again as margin for instances whose
// clocks run behind ours. Never below one second (the granularity some
// stores expire at).
func (r *Receiver) replayTTL(e Event) time.Duration {
	until := e.IssuedAt.Add(r.cfg.MaxAge)
	if !e.Expiry.IsZero() && e.Expiry.Before(until) {
		until = e.Expiry
	}
	ttl := until.Add(2 * r.cfg.Skew).Sub(r.now())
	return max(ttl, time.Second)
}
