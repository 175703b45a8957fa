package fencetext_test

import (
	"fmt"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/fencetext"
)

// A store writes the text form of a fence and reads it back; a value it
// cannot read is a store error, never a fence that was never bumped.
func Example() {
	f := middleware.Fence{
		Gen: 3, Reserved: 3, Reload: 1,
		BumpedAt: time.UnixMilli(1_700_000_000_123).UTC(),
		Policy:   middleware.PolicyFreshLogin,
		Reason:   "security incident: rotate",
	}
	text := fencetext.Encode(f)
	fmt.Println(text)

	got, ok := fencetext.Decode(text)
	fmt.Println(ok, got.Gen, got.Policy, got.BumpedAt.Format(time.RFC3339Nano), got.Reason)

	_, ok = fencetext.Decode("3:1:not-a-time:1:0:0:")
	fmt.Println(ok)
	// Output:
	// v2:3:3:1:1700000000123:1:0:0:security incident: rotate
	// true 3 login 2023-11-14T22:13:20.123Z security incident: rotate
	// false
}
