package fencetext

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// Fences compare with ==: Decode returns times in UTC without a monotonic
// reading, as time.UnixMilli(ms).UTC() builds them in the tables below.

func TestEncodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    middleware.Fence
		text string // expected encoding, checked when not empty
	}{
		{name: "zero fence encodes as zeros and an empty reason", f: middleware.Fence{}, text: "v2:0:0:0:0:0:0:0:"},
		{
			name: "every field survives",
			f: middleware.Fence{Gen: 12, Reserved: 14, Reload: 3, BumpedAt: time.UnixMilli(1_700_000_000_123).UTC(),
				Policy: middleware.PolicyMFA, PendingAt: time.UnixMilli(1_700_000_360_000).UTC(),
				PendingPolicy: middleware.PolicyFreshLogin, Reason: "rotate"},
			text: "v2:12:14:3:1700000000123:2:1700000360000:1:rotate",
		},
		{name: "reason may contain separators and newlines", f: middleware.Fence{Gen: 1, Reserved: 1, Reason: "a:b:c\n::"}},
		{name: "reason may be any utf-8 text", f: middleware.Fence{Gen: 1, Reserved: 1, Reason: "Wartung – bitte speichern ✓"}},
		{name: "largest generation survives", f: middleware.Fence{Gen: ^uint64(0), Reserved: ^uint64(0), Reload: ^uint64(0)}},
		{name: "latest storable time survives", f: middleware.Fence{BumpedAt: time.UnixMilli(maxMilli).UTC()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Encode(tt.f)
			if tt.text != "" && s != tt.text {
				t.Fatalf("Encode = %q, want %q", s, tt.text)
			}
			got, ok := Decode(s)
			if !ok {
				t.Fatalf("Decode(%q) refused its own encoding", s)
			}
			if got != tt.f {
				t.Fatalf("round trip =\n %+v\nwant\n %+v", got, tt.f)
			}
		})
	}
}

func TestDecodeReadsTheFirstForm(t *testing.T) {
	// Values written before Reserved existed: an announcement pending under
	// the old rules had reserved Gen+1, which cookies kept through it
	// recorded; without one, nothing beyond Gen was ever handed out.
	tests := []struct {
		name string
		in   string
		want middleware.Fence
	}{
		{"plain revoked fence", "3:1:1700000000123:1:0:0:why", middleware.Fence{Gen: 3, Reserved: 3, Reload: 1,
			BumpedAt: time.UnixMilli(1_700_000_000_123).UTC(), Policy: middleware.PolicyFreshLogin, Reason: "why"}},
		{"pending announcement reserved the next generation", "3:0:0:0:1700000360000:2:", middleware.Fence{Gen: 3, Reserved: 4,
			PendingAt: time.UnixMilli(1_700_000_360_000).UTC(), PendingPolicy: middleware.PolicyMFA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Decode(tt.in)
			if !ok || got != tt.want {
				t.Fatalf("Decode(%q) = %+v, %v; want %+v", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestEncodeKeepsMilliseconds(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, time.FixedZone("x", 3600))
	got, ok := Decode(Encode(middleware.Fence{BumpedAt: at}))
	if !ok {
		t.Fatal("Decode refused an encoded fence")
	}
	if want := at.Truncate(time.Millisecond); !got.BumpedAt.Equal(want) {
		t.Fatalf("BumpedAt = %v, want %v", got.BumpedAt, want)
	}
}

func TestDecodeRefusesMalformedValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty value", ""},
		{"too few fields", "1:2:3"},
		{"missing reason separator", "0:0:0:0:0:0"},
		{"empty numeric field", "0::0:0:0:0:"},
		{"leading empty field", ":0:0:0:0:0:0:"},
		{"negative generation", "-1:0:0:0:0:0:"},
		{"explicit plus sign", "+1:0:0:0:0:0:"},
		{"hexadecimal number", "0x1:0:0:0:0:0:"},
		{"space in a number", " 1:0:0:0:0:0:"},
		{"generation overflows uint64", "18446744073709551616:0:0:0:0:0:"},
		{"field longer than twenty digits", "000000000000000000001:0:0:0:0:0:"},
		{"unknown policy", "1:0:0:3:0:0:"},
		{"unknown pending policy", "1:0:0:0:0:9:"},
		{"bump time beyond the storable range", "1:0:8796093022209:0:0:0:"},
		{"pending time beyond the storable range", "1:0:0:0:99999999999999:0:"},
		{"text instead of numbers", "gen:reload:a:b:c:d:e"},
		{"json instead of the text form", `{"gen":1}`},
		{"reserved below the generation", "v2:5:4:0:0:0:0:0:"},
		{"second form missing a field", "v2:1:1:0:0:0:0:"},
		{"second form with an empty reserved field", "v2:1::0:0:0:0:0:"},
		{"unknown version prefix", "v3:1:1:0:0:0:0:0:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, ok := Decode(tt.in); ok {
				t.Fatalf("Decode(%q) = %+v, ok; want refused", tt.in, f)
			}
		})
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	s := Encode(middleware.Fence{Gen: 9, Reserved: 9, Reload: 1, BumpedAt: time.UnixMilli(1_700_000_000_000),
		Policy: middleware.PolicyMFA, Reason: "shared with the input"})
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := Decode(s); !ok {
			t.Fatal("Decode refused a valid value")
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode allocates %v times per call, want 0", allocs)
	}
}

// FuzzDecode feeds arbitrary stored values to the decoder: it must
// never panic, and whatever it accepts must re-encode to a value that
// decodes to the same fence, within the documented ranges.
func FuzzDecode(f *testing.F) {
	f.Add("0:0:0:0:0:0:")
	f.Add("12:3:1700000000123:2:1700000360000:1:rotate")
	f.Add("1:0:0:0:0:0:a:b:c")
	f.Add("18446744073709551615:0:8796093022208:2:0:0:")
	f.Add("1:2:3")
	f.Fuzz(func(t *testing.T, s string) {
		fence, ok := Decode(s)
		if !ok {
			return
		}
		if fence.Policy > middleware.PolicyMFA || fence.PendingPolicy > middleware.PolicyMFA {
			t.Fatalf("Decode(%q) accepted policy %d/%d", s, fence.Policy, fence.PendingPolicy)
		}
		if !strings.HasSuffix(s, fence.Reason) {
			t.Fatalf("Decode(%q) reason %q is not the tail of the input", s, fence.Reason)
		}
		again, ok := Decode(Encode(fence))
		if !ok || again != fence {
			t.Fatalf("re-encoding of %q does not round trip: %+v vs %+v", s, fence, again)
		}
	})
}

// The text form must hold every fence the reference semantics can produce:
// the latest announcement time middleware.ApplyBump accepts is the latest
// time Decode reads back, and one millisecond more is refused by both.
func TestEveryBumpableTimeHasATextForm(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000).UTC()
	latest := time.UnixMilli(maxMilli).UTC()
	f, err := middleware.ApplyBump(middleware.Fence{}, middleware.Bump{Kind: middleware.BumpAnnounce, At: latest}, now)
	if err != nil {
		t.Fatalf("ApplyBump refused an announcement at the latest storable time: %v", err)
	}
	if got, ok := Decode(Encode(f)); !ok || got != f {
		t.Fatalf("announced fence %+v does not round trip: %+v, %v", f, got, ok)
	}
	beyond := latest.Add(time.Millisecond)
	if _, err := middleware.ApplyBump(middleware.Fence{}, middleware.Bump{Kind: middleware.BumpAnnounce, At: beyond}, now); err == nil {
		t.Fatal("ApplyBump accepted an announcement beyond the storable range")
	}
	if _, ok := Decode(Encode(middleware.Fence{PendingAt: beyond})); ok {
		t.Fatal("Decode read a time beyond the storable range")
	}
}
