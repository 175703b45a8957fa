// Package fencetext is the storage text form of a [middleware.Fence], for
// stores that keep fences as strings: the Valkey store keeps one such
// value per fence key (see package valkeystore's key layout), and its bump
// script writes the same form server side. A store that keeps fences as
// structures (memstore) does not need it.
//
//	v2:gen:reserved:reload:bumpedAtMs:policy:pendingAtMs:pendingPolicy:reason
//
// Times are Unix milliseconds, 0 for none; the reason is last, so it may
// contain ':'. The first form, written before Reserved existed, is still
// read: "gen:reload:bumpedAtMs:policy:pendingAtMs:pendingPolicy:reason".
//
// Happy path, in a store's write and read:
//
//	text := fencetext.Encode(f)
//	f, ok := fencetext.Decode(text) // !ok: a store error, never a zero fence
//
// Security notes:
//
//   - [Decode] runs for every fence of every request: it parses by hand,
//     allocates nothing (the reason shares the input's memory) and refuses
//     every value but the canonical one, so a corrupt or hostile value
//     cannot pass for a fence.
//   - A malformed value must fail closed: the store reports it as
//     [middleware.ErrStoreUnavailable], never as a fence that was never
//     bumped, which would let every revoked session through.
package fencetext
