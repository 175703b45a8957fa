// Package backchannel receives OpenID Connect Back-Channel Logout 1.0
// requests: an identity provider POSTs a signed logout token naming a
// user (sub) or one of its sessions (sid), and the [Receiver] revokes
// what it names by bumping fences in the guard's store. Every instance of
// the application refuses those sessions from its next request on, and
// the login that follows must be a fresh one.
//
// Happy path:
//
//	rcv, err := backchannel.New(backchannel.Config{
//		Guard:   guard, // its store must implement middleware.Replay
//		Issuers: []backchannel.Issuer{{Issuer: "https://idp.example.com", ClientID: "my-app"}},
//	})
//	mux.Handle("POST /backchannel-logout", rcv) // gin: ginadapter.BackchannelHandler(rcv)
//	reg, err := rcv.Registration("https://app.example.com/backchannel-logout") // register these at the provider
//
// What happens to a token, in order: the request must be a form POST with
// one logout_token; the token must be a compact JWS (an encrypted one is
// refused with a clear error) whose alg is on the issuer's allow-list and
// whose typ is acceptable; its claims must name a configured issuer, our
// client id, a fresh iat, an unexpired exp, a jti, the logout event with
// an object value, sub or sid, and no nonce; then the signature must
// verify with the issuer's published keys. A valid token that was already
// applied (same iss and jti) is answered 200 and changes nothing. A new
// one bumps the IdP-session fence (a tombstone: a login of that session
// that completes later is refused too) or, without sid, the subject's
// fence, with a fresh-login policy. docs/backchannel.md has the details,
// the reason codes and the provider switches.
//
// Security notes:
//
//   - Every relaxation that weakens a check is explicit and off by
//     default: InsecureAllowMissingExp, InsecureAllowSilentLogin;
//     HMAC-signed tokens only when the issuer lists HS256/384/512 and has
//     the client secret; alg none never. StrictType tightens the typ
//     check beyond the default, which tolerates providers that send JWT
//     or no typ.
//   - Keys come from the issuer's own discovery document (whose issuer
//     must match exactly) or a configured JWKS URL. An unknown kid
//     triggers at most one refresh per KeyRefreshInterval per issuer, and
//     only for a token that passed every other check, so forged tokens
//     cannot make the receiver hammer the provider.
//   - Replays are refused through the store's [middleware.Replay] ability,
//     shared by every instance; New fails without it. The order of
//     "remember" and "bump" is chosen so that a failed store write stays
//     retryable (503 with Retry-After) while an applied token never
//     applies twice on replay; see the comment on the apply step.
//   - Responses never echo the request. Bad input gets 400, never 5xx; a
//     503 means keys or store were unavailable and the provider should
//     retry. Every request is bounded by Config.Timeout.
//   - Logs carry iss, jti, sub, sid and a reason code, never the token.
package backchannel
