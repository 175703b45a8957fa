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
// The CLI builds a middleware.Guard only because middleware.Admin needs
// one; that guard gets a random cookie key because the CLI never issues
// or reads cookies. Nothing it does depends on the application's keys.
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
