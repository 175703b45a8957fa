// Package interop runs the example applications against real, certified
// OpenID Providers that we did not write, over loopback HTTP with
// cookie-jar clients playing browsers: Ory Hydra (package hydra) with our
// own login, consent and logout app (package loginapp), and panva's node
// oidc-provider (package oidcprovider) with our own sign-in pages.
//
// It is a separate module, so that nothing it needs enters the library's
// go.mod. Run it with scripts/interop from the repository root.
package interop
