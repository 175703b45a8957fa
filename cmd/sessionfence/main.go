// Command sessionfence is the operator CLI for incident response: it acts
// on the fences in a Valkey (or Redis 7+) store shared by every instance
// of an application, without going through the application. Every action
// is recorded in the store's audit log with the actor "cli:<user>".
//
//	sessionfence terminate-all --reason "credential leak" --reauth mfa --yes
//	sessionfence terminate-user https://idp.example.com 248289761001 --reason leaver
//	sessionfence status tenant acme
//	sessionfence audit --limit 20
//
// The store is named by --addr or SESSIONFENCE_VALKEY_ADDR (host:port,
// comma-separated for several seed nodes) and --prefix or
// SESSIONFENCE_PREFIX (default "{sessionfence}:", the application's
// valkeystore.Config.Prefix). A password, when the server needs one, is
// read from SESSIONFENCE_VALKEY_PASSWORD only, never from a flag (flags
// show up in process listings and shell history).
//
// The CLI acts through the admin package's Service over a bare fence
// writer (middleware.NewWriter): it holds none of the application's
// cookie keys, so it can neither read nor keep a session, and it has no
// session lifetimes of its own. A fence it writes lasts as long as the
// longest lifetimes the application's guards recorded in the store (kept
// for ever when none are recorded), so it never expires before the
// sessions it ends.
//
// Exit codes: 0 success, 1 the operation failed (nothing pending to
// cancel, store misconfigured, ...), 2 usage error, 3 store unavailable,
// 4 refused (terminate-all not confirmed).
//
// See docs/runbook.md for what to run, in order, in an incident.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
