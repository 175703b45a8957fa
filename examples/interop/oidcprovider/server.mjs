// server.mjs runs panva's oidc-provider (the npm package, version pinned in
// package.json) as a test OpenID Provider for the interop suite, with our
// own interaction pages (a password form with an optional one-time code)
// instead of the package's development ones, and test-only hooks under
// /__test/. It is driven by examples/interop/oidcprovider (Go), never
// deployed.
//
//   node server.mjs <config.json>       (or OP_CONFIG=<config.json>)
//
// The configuration file (JSON) holds:
//   host, port     where to listen; default 127.0.0.1 and 0 (a free port)
//   clients        client metadata as oidc-provider takes it (snake_case)
//   users          { name: { password, claims: {...} } }
//   otp            the one-time code every user's second factor accepts
//   passwordACR, mfaACR   acr values after a password / password + code
//   api            { resource, audience, scope }: the resource server whose
//                  access tokens are JWTs (RFC 9068) for the audience
//   ssrfProtection keep oidc-provider's refusal to POST back-channel
//                  logout tokens to special-use addresses (127.0.0.0/8
//                  among them); default false, so loopback RPs get them
//   defaultIssueRefreshToken  keep oidc-provider's issueRefreshToken (a
//                  refresh token only when offline_access was granted,
//                  i.e. only with prompt=consent); default: also to every
//                  confidential web client
//   noStepUp       drop our login check that asks a live password session
//                  for the code when acr_values names mfaACR
//
// Once listening it prints one JSON line to stdout:
//   {"issuer":"http://127.0.0.1:<port>","node":"v…","oidcProvider":"9.…"}
// and logs one JSON line per event (back-channel results, errors).
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';

import Provider, { errors, interactionPolicy } from 'oidc-provider';

const require = createRequire(import.meta.url);
const opVersion = require('oidc-provider/package.json').version;

const configPath = process.argv[2] || process.env.OP_CONFIG;
if (!configPath) {
  console.error('usage: node server.mjs <config.json> (or OP_CONFIG)');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(configPath, 'utf8'));
const users = cfg.users || {};
const passwordACR = cfg.passwordACR || 'urn:sessionfence:pwd';
const mfaACR = cfg.mfaACR || 'urn:sessionfence:mfa';
const api = cfg.api || { resource: 'urn:sessionfence:api', audience: 'api', scope: 'api:read' };

const log = (event, fields) => console.log(JSON.stringify({ event, ...fields }));

// What the tests read back through /__test/.
const logins = []; // one record per login interaction
const consents = []; // one record per consent interaction (granted at once)
const logouts = []; // one record per completed end_session
const backchannel = []; // one record per logout token POSTed

// A memory adapter of our own: the package's is an LRU we cannot list,
// and the end-session hook must find a user's sessions.
const stores = new Map();
class MapAdapter {
  constructor(model) {
    this.model = model;
    if (!stores.has(model)) stores.set(model, new Map());
    this.m = stores.get(model);
  }

  live(id) {
    const e = this.m.get(id);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.m.delete(id);
      return undefined;
    }
    return e.payload;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    this.m.set(id, { payload, expiresAt });
  }

  async find(id) { return this.live(id); }

  async findByUid(uid) {
    for (const [id, e] of this.m) if (e.payload.uid === uid) return this.live(id);
    return undefined;
  }

  async findByUserCode(code) {
    for (const [id, e] of this.m) if (e.payload.userCode === code) return this.live(id);
    return undefined;
  }

  async consume(id) {
    const p = this.live(id);
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { this.m.delete(id); }

  async revokeByGrantId(grantId) {
    for (const [id, e] of this.m) if (e.payload.grantId === grantId) this.m.delete(id);
  }
}

// The step-up check: voluntary acr_values are otherwise ignored by the
// default policy (only essential acr claims, through the claims
// parameter, make it prompt).
const policy = interactionPolicy.base();
if (!cfg.noStepUp) {
  policy.get('login').checks.add(new interactionPolicy.Check(
    'acr_values_mfa',
    'acr_values asks for a second factor the session lacks',
    (ctx) => {
      const { oidc } = ctx;
      const wanted = (oidc.params.acr_values || '').split(' ');
      if (!wanted.includes(mfaACR) || !oidc.session.accountId) return false;
      return oidc.acr !== mfaACR;
    },
  ));
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };

function configuration() {
  return {
    adapter: MapAdapter,
    clients: cfg.clients || [],
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    acrValues: [passwordACR, mfaACR],
    claims: {
      // tenant rides with openid so that every ID token carries it.
      openid: ['sub', 'tenant'],
      profile: ['name'],
      email: ['email', 'email_verified'],
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      iss: null,
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', api.scope],
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource },
      resourceIndicators: {
        enabled: true,
        async getResourceServerInfo(ctx, resource) {
          if (resource !== api.resource) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: api.scope,
            audience: api.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 300,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // oidc-provider drops offline_access from any authorization request
    // whose prompt lacks consent (OpenID Connect Core 11), and by default
    // issues refresh tokens only for offline_access. The recipe from its
    // documentation also issues them to confidential web clients; such a
    // token then expires with the provider session (expiresWithSession).
    ...(cfg.defaultIssueRefreshToken ? {} : {
      async issueRefreshToken(ctx, client, code) {
        return client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access')
          || (client.applicationType === 'web' && client.clientAuthMethod !== 'none'));
      },
    }),
    async extraTokenClaims(ctx, token) {
      const tenant = users[token.accountId]?.claims?.tenant;
      return tenant === undefined ? undefined : { tenant };
    },
    async findAccount(ctx, sub) {
      const u = users[sub];
      if (!u) return undefined;
      return {
        accountId: sub,
        async claims() { return { sub, ...(u.claims || {}) }; },
      };
    },
    interactions: {
      policy,
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: 300,
      IdToken: 300,
      RefreshToken: 24 * 60 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
      Interaction: 10 * 60,
    },
    // oidc-provider refuses to POST logout tokens to special-use
    // addresses (SSRF protection); the suite's RPs listen on 127.0.0.1.
    fetch: (url, options) => {
      if (!cfg.ssrfProtection) delete options.dispatcher;
      return globalThis.fetch(url, options);
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>error</title><pre id="error">${esc(JSON.stringify(out))}</pre>`;
    },
  };
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// logoutSource renders end_session's confirmation page; the tests post
// the form with logout=yes, as a person pressing the button would.
async function logoutSource(ctx, form) {
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out</title></head>
<body><h1>Sign out of ${esc(ctx.host)}?</h1>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>
</body></html>`;
}

const page = ({ uid, stepUp, mfa, username, error }) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>${stepUp ? 'Confirm it is you' : 'Sign in'}</h1>
${error ? `<p role="alert">${esc(error)}</p>` : ''}
${mfa ? '<p>This application asks for your one-time code.</p>' : ''}
<form id="signin" method="post" action="/interaction/${esc(uid)}/login">
<input type="hidden" name="challenge" value="${esc(uid)}">
${stepUp ? '' : `<label>Username <input name="username" value="${esc(username || '')}" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<label><input type="checkbox" name="remember" value="1"> Keep me signed in</label>
`}<label>One-time code <input name="otp" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Continue</button>
</form>
</body></html>
`;

function eq(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

async function readBody(req) {
  const chunks = [];
  let n = 0;
  for await (const c of req) {
    n += c.length;
    if (n > 1 << 16) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

// demand is what an interaction asks of the person.
function demand(details) {
  const { prompt, params, session } = details;
  const reasons = prompt.reasons || [];
  const fresh = reasons.includes('login_prompt') || reasons.includes('max_age');
  const mfa = (params.acr_values || '').split(' ').includes(mfaACR);
  // A step-up: a live session asked only for the code it lacks.
  const stepUp = Boolean(session?.accountId) && !fresh && reasons.includes('acr_values_mfa');
  return { reasons, fresh, mfa, stepUp };
}

function record(uid, fields) {
  let r = logins.find((l) => l.uid === uid);
  if (!r) {
    r = { uid };
    logins.push(r);
  }
  Object.assign(r, fields);
  return r;
}

async function interactionPage(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (prompt.name === 'consent') {
    // First-party application: grant what was asked, without a page.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    consents.push({ uid, clientId: params.client_id, reasons: prompt.reasons, scope: d.missingOIDCScope || [], resources: d.missingResourceScopes || {} });
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  const d = demand(details);
  record(uid, {
    prompt: prompt.name,
    reasons: d.reasons,
    session: session?.accountId || '',
    clientId: params.client_id,
    params: { prompt: params.prompt || '', max_age: params.max_age === undefined ? '' : String(params.max_age), acr_values: params.acr_values || '', scope: params.scope || '' },
    form: true,
    stepUp: d.stepUp,
    accepted: false,
  });
  send(res, 200, 'text/html; charset=utf-8', page({ uid, stepUp: d.stepUp, mfa: d.mfa, username: session?.accountId }));
}

async function interactionSubmit(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, session } = details;
  const form = new URLSearchParams(await readBody(req));
  const d = demand(details);
  const otp = form.get('otp') || '';
  const view = { uid, stepUp: d.stepUp, mfa: d.mfa, username: form.get('username') || session?.accountId };
  const fail = (error) => send(res, 401, 'text/html; charset=utf-8', page({ ...view, error }));
  if (otp && !eq(otp, cfg.otp)) return fail('That code is not valid.');
  let login;
  if (d.stepUp) {
    if (!otp) return fail('Enter your one-time code.');
    // Only the code was typed: the session's authentication time stands
    // (result.login.ts; oidc-provider would otherwise use now).
    const s = await provider.Session.findByUid(session.uid);
    const amr = [...new Set([...(s?.amr || ['pwd']), 'otp'])];
    login = { accountId: session.accountId, acr: mfaACR, amr, remember: !s?.transient, ts: s?.loginTs };
  } else {
    const user = form.get('username') || '';
    const u = users[user];
    if (!u || !eq(form.get('password') || '', u.password)) return fail('Wrong username or password.');
    if (d.mfa && !otp) return fail('This application requires your one-time code.');
    login = otp
      ? { accountId: user, acr: mfaACR, amr: ['pwd', 'otp'] }
      : { accountId: user, acr: passwordACR, amr: ['pwd'] };
    login.remember = form.get('remember') !== null;
    login.ts = Math.floor(Date.now() / 1000);
  }
  record(uid, { accepted: true, subject: login.accountId, acr: login.acr, amr: login.amr, ts: login.ts });
  await provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
}

// endSessions is the test hook behind POST /__test/end-session: it ends
// every provider session of sub (or the one whose authorizations carry
// sid) as end_session's confirm step does, sending each client's logout
// token first, then revoking the grants and destroying the session.
async function endSessions(provider, { sub, sid }) {
  const sessions = stores.get('Session') || new Map();
  const out = [];
  for (const [id, e] of [...sessions]) {
    const s = e.payload;
    const auths = s.authorizations || {};
    const sids = Object.values(auths).map((a) => a.sid);
    if (!s.accountId || (sub && s.accountId !== sub) || (sid && !sids.includes(sid)) || (!sub && !sid)) continue;
    for (const [clientId, a] of Object.entries(auths)) {
      const client = await provider.Client.find(clientId);
      if (client?.backchannelLogoutUri) {
        await deliver(client, s.accountId, a.sid, 'hook');
      }
      if (a.grantId) {
        await Promise.all([provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode]
          .map((m) => m.adapter.revokeByGrantId(a.grantId)));
        await provider.Grant.adapter.destroy(a.grantId);
      }
    }
    sessions.delete(id);
    out.push({ sub: s.accountId, sids });
  }
  return out;
}

async function deliver(client, sub, sid, via) {
  const r = { clientId: client.clientId, sub, sid, via, ok: true };
  try {
    await client.backchannelLogout(sub, sid);
  } catch (err) {
    r.ok = false;
    r.error = String(err?.cause?.message || err?.message || err);
  }
  backchannel.push(r);
  log('backchannel', r);
  return r;
}

async function testHook(provider, req, res, path) {
  const json = (status, v) => send(res, status, 'application/json', JSON.stringify(v));
  if (req.method === 'GET' && path === '/__test/logins') return json(200, logins);
  if (req.method === 'GET' && path === '/__test/consents') return json(200, consents);
  if (req.method === 'GET' && path === '/__test/logouts') return json(200, logouts);
  if (req.method === 'GET' && path === '/__test/backchannel') return json(200, backchannel);
  if (req.method === 'POST' && path === '/__test/end-session') {
    const body = JSON.parse((await readBody(req)) || '{}');
    return json(200, await endSessions(provider, body));
  }
  return json(404, { error: 'not_found' });
}

const server = http.createServer();
server.listen(cfg.port || 0, cfg.host || '127.0.0.1', () => {
  const { address, port } = server.address();
  const issuer = `http://${address}:${port}`;
  const provider = new Provider(issuer, configuration());
  // end_session posts logout tokens itself; record its results too.
  provider.on('backchannel.success', (ctx, client, sub, sid) => {
    const r = { clientId: client.clientId, sub, sid, via: 'end_session', ok: true };
    backchannel.push(r);
    log('backchannel', r);
  });
  provider.on('backchannel.error', (ctx, err, client, sub, sid) => {
    const r = { clientId: client.clientId, sub, sid, via: 'end_session', ok: false, error: String(err?.cause?.message || err?.message || err) };
    backchannel.push(r);
    log('backchannel', r);
  });
  provider.on('end_session.success', (ctx) => {
    logouts.push({ subject: ctx.oidc.session?.accountId || '', clientId: ctx.oidc.client?.clientId || '', rpInitiated: Boolean(ctx.oidc.client) });
  });
  provider.on('server_error', (ctx, err) => log('server_error', { error: String(err?.stack || err) }));
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const path = new URL(req.url, issuer).pathname;
    try {
      const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(path);
      if (m && req.method === 'GET' && !m[2]) return await interactionPage(provider, req, res);
      if (m && req.method === 'POST' && m[2]) return await interactionSubmit(provider, req, res);
      if (path.startsWith('/__test/')) return await testHook(provider, req, res, path);
      return callback(req, res);
    } catch (err) {
      log('interaction_error', { path, error: String(err?.stack || err) });
      if (!res.headersSent) send(res, err?.statusCode || 500, 'text/plain', String(err?.message || err));
    }
  });
  console.log(JSON.stringify({ issuer, node: process.version, oidcProvider: opVersion }));
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
