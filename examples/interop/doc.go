// Package interop runs the example applications against a real, certified
// OpenID Provider that we did not write: Ory Hydra (see package hydra),
// with our own login, consent and logout app (package loginapp), over
// loopback HTTP with cookie-jar clients playing browsers.
//
// It is a separate module, so that nothing it needs enters the library's
// go.mod. Run it with scripts/interop from the repository root.
package interop
