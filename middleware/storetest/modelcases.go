package storetest

import (
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// modelRegressions are sequences run before the random ones on every
// store: a bug fixed becomes a sequence the model would have found.
var modelRegressions = []struct {
	name string
	ops  []Op
}{
	// Issue 10, break 1, as the model found it on the algebra before
	// Reserved (seed 2, the third sequence tried, shortened from 26 steps):
	// a cookie kept through an announcement recorded Gen+1, which the
	// next revoke of the scope handed out again, so the kept cookie
	// passed the revoke that should have ended it.
	{"kept through an announcement then revoked (seed 2 on the old algebra)", []Op{
		{Kind: OpLogin, Ref: 8, Tenant: 2, SID: 1},
		{Kind: OpLogin, Ref: 50, Tenant: 2, SID: 2},
		{Kind: OpAnnounce, Scope: middleware.ScopeTenant, Ref: 53, Keep: true, D: 50 * time.Millisecond},
		{Kind: OpRevoke, Scope: middleware.ScopeTenant, Ref: 19, Keep: true},
	}},
	// The same break through a cancel: the cancelled announcement's
	// generation was not burned, so the revoke after it handed it out.
	{"kept through a cancelled announcement then revoked", []Op{
		{Kind: OpLogin, SID: -1},
		{Kind: OpAnnounce, Scope: middleware.ScopeTenant, Keep: true, D: time.Hour},
		{Kind: OpCancel, Scope: middleware.ScopeTenant},
		{Kind: OpRevoke, Scope: middleware.ScopeTenant},
	}},
	// And through a re-announcement: the new announcement reserved the
	// generation the earlier kept cookie recorded.
	{"kept through an announcement then re-announced", []Op{
		{Kind: OpLogin, SID: -1},
		{Kind: OpAnnounce, Scope: middleware.ScopeGlobal, Keep: true, D: time.Hour},
		{Kind: OpAnnounce, Scope: middleware.ScopeGlobal, D: 3 * time.Hour},
	}},
}
