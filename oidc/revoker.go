package oidc

import (
	"context"
	"errors"
	"fmt"

	"github.com/sessionfence/sessionfence/middleware/admin"
)

// The RP revokes refresh tokens for the administration service.
var _ admin.TokenRevoker = (*RP)(nil)

// RevokeSessionTokens implements [admin.TokenRevoker] for
// [admin.Config]: for each session it deletes the server-side
// tokens and revokes the refresh token at the provider's revocation
// endpoint (RFC 7009). It returns how many refresh tokens the provider
// confirmed revoked; failures are joined into err without stopping the
// others. Deleting our copy already makes a refresh token unusable by us;
// the provider call also ends the grant at the provider.
func (rp *RP) RevokeSessionTokens(ctx context.Context, sessionIDs []string) (int, error) {
	if rp.secrets == nil {
		return 0, nil
	}
	var errs []error
	revoked := 0
	for _, id := range sessionIDs {
		rec, err := rp.loadSecret(ctx, id)
		if errors.Is(err, errNoSecret) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", id, err))
			continue
		}
		if err := rp.secrets.DeleteSecret(ctx, secretKey(id)); err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", id, err))
			continue
		}
		if rec.RefreshToken == "" {
			continue
		}
		p := rp.byName[rec.Provider]
		if p == nil || p.revocation == "" {
			continue
		}
		if err := rp.revokeAtProvider(ctx, p, rec.RefreshToken); err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", id, err))
			continue
		}
		revoked++
	}
	return revoked, errors.Join(errs...)
}
