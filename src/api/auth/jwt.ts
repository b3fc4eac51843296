// OAuth2 / OpenID Connect bearer tokens (JWTs) verified against a JWKS (jose), beside API keys: a
// bearer token starting `mm_` is an API key, anything else is tried as a JWT when a JWKS is
// configured. Roles come from a claim (default `roles`: an array or a space-separated string);
// names that are not Middlemart roles are ignored. The rate-limit key is `jwt:<sub>`.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { isRole, type Authenticator, type Principal, type Role } from './roles.js';

export interface JwtOptions {
  /** Where the identity provider publishes its signing keys. */
  jwksUrl: string;
  /** Required `iss`. */
  issuer: string;
  /** Required `aud`. */
  audience: string;
  /** The claim holding Middlemart roles; default `roles`. */
  rolesClaim?: string;
  /** The claim naming the SLA tier; default `tier` (else `standard`). */
  tierClaim?: string;
  /** Accepted clock skew in seconds; default 30. */
  clockToleranceSeconds?: number;
}

function rolesOf(value: unknown): Role[] {
  const names = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/\s+/) : [];
  return [...new Set(names.filter(isRole))];
}

/** The principal a verified token stands for. */
export function principalOfClaims(payload: JWTPayload, opts: JwtOptions): Principal | undefined {
  if (typeof payload.sub !== 'string' || payload.sub === '') return undefined;
  const tier = payload[opts.tierClaim ?? 'tier'];
  return {
    keyPrefix: `jwt:${payload.sub}`,
    name: typeof payload.client_id === 'string' ? payload.client_id : payload.sub,
    roles: rolesOf(payload[opts.rolesClaim ?? 'roles']),
    tier: typeof tier === 'string' ? tier : 'standard',
  };
}

/** Verifies JWT bearer tokens; undefined for anything not a valid token of this issuer. */
export function jwtAuthenticator(opts: JwtOptions): Authenticator {
  const jwks = createRemoteJWKSet(new URL(opts.jwksUrl));
  return async (token) => {
    if (token === undefined) return undefined;
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: opts.issuer,
        audience: opts.audience,
        clockTolerance: opts.clockToleranceSeconds ?? 30,
      });
      return principalOfClaims(payload, opts);
    } catch (error) {
      // The caller's token is at fault (401) unless the JWKS itself could not be had: that is our
      // outage, answered 503 by the access hook.
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('ERR_J') && !OUR_FAULT.has(code)) {
        return undefined;
      }
      throw error;
    }
  };
}

const OUR_FAULT = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);

/** API keys for `mm_…` tokens, the JWT verifier (when configured) for the rest. */
export function combinedAuthenticator(apiKeys: Authenticator, jwt?: Authenticator): Authenticator {
  return async (token) => {
    if (token === undefined) return undefined;
    if (token.startsWith('mm_') || !jwt) return apiKeys(token);
    return jwt(token);
  };
}
