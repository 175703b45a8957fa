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
	// Found by the model on the first writer: a store restored to an epoch
	// since replaced was taken for a new epoch, not a rollback, so the
	// sessions of the old epoch passed again (after a wipe, and after the
	// rotation that follows a first rollback).
	{"a snapshot restored after a wipe", []Op{
		{Kind: OpSnapshot},
		{Kind: OpLogin, Tenant: 1, SID: 0},
		{Kind: OpWipe},
		{Kind: OpRestore},
	}},
	{"a snapshot restored twice after a revocation", []Op{
		{Kind: OpLogin, SID: 0},
		{Kind: OpSnapshot},
		{Kind: OpRevoke, Scope: middleware.ScopeSubject},
		{Kind: OpRestore},
		{Kind: OpRestore},
	}},
	// Then, with a clock that stands still: a rotation made an epoch no
	// newer than one the guard had seen, and the login after it failed.
	{"restored, wiped and restored again", []Op{
		{Kind: OpSnapshot},
		{Kind: OpBackchannel, SID: 0},
		{Kind: OpRestore},
		{Kind: OpWipe},
		{Kind: OpRestore},
	}},
	// Also found by the model: a renewal result was handed out again long
	// after renewResultTTL (and to another cookie of the same session with
	// the same access expiry), with an access expiry already past.
	{"a cookie renewed again after the shared result's time", []Op{
		{Kind: OpLogin, SID: -1},
		{Kind: OpAdvance, D: 6 * time.Minute},
		{Kind: OpVisit},
		{Kind: OpAdvance, D: 4 * time.Minute},
		{Kind: OpVisit},
	}},
	// And: keeping a session past its absolute expiry was judged by its
	// fences alone.
	{"keeping a session past its absolute expiry is refused", []Op{
		{Kind: OpLogin, SID: -1},
		{Kind: OpAdvance, D: 3 * time.Hour},
		{Kind: OpRevoke, Scope: middleware.ScopeGlobal, Keep: true},
	}},
}
