// Test-only in-memory storage adapter for server.mjs (node-oidc-provider 9.x and 6.x).
//
// Same contract as node-oidc-provider's bundled memory adapter (upsert, find, findByUid,
// findByUserCode, consume, destroy, revokeByGrantId), plus what that one cannot do: find
// everything that belongs to an account, so the admin route can revoke a person's access the
// way an administrator would at a real IdP. All models share one store, so `revokeByGrantId`
// on any model drops every artifact (access/refresh tokens, codes) of that grant.
//
// Payloads are stored as JSON copies, like a database would, so the provider never shares
// objects with the store. State lives as long as the process: a restart loses it.

const SESSION = 'Session';
const GRANT = 'Grant'; // 9.x only; 6.x keeps grant ids in the session and on the tokens

function epochTime() {
  return Math.floor(Date.now() / 1000);
}

function addTo(index, name, key) {
  if (name === undefined || name === null) return;
  if (!index.has(name)) index.set(name, new Set());
  index.get(name).add(key);
}

function removeFrom(index, name, key) {
  const keys = index.get(name);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) index.delete(name);
}

// The account a stored payload belongs to: `accountId` on tokens, grants and 9.x sessions,
// `account` on 6.x sessions.
function accountOf(model, payload) {
  return payload.accountId ?? (model === SESSION ? payload.account : undefined);
}

// Grant ids a stored payload refers to: its own `grantId`, a 9.x Grant's id, and the grant
// of every client in a session.
function grantIdsOf(model, id, payload) {
  const ids = new Set();
  if (payload.grantId) ids.add(payload.grantId);
  if (model === GRANT) ids.add(id);
  for (const authorization of Object.values(payload.authorizations ?? {})) {
    if (authorization?.grantId) ids.add(authorization.grantId);
  }
  return ids;
}

export class AccountIndexedStore {
  entries = new Map(); // "Model:id" -> { model, id, payload, expiresAt }

  byGrant = new Map(); // grantId -> Set of keys whose payload.grantId is it

  byAccount = new Map(); // accountId -> Set of keys

  sessionUids = new Map(); // session uid -> session id

  userCodes = new Map(); // device flow user code -> id

  get(model, id) {
    const key = `${model}:${id}`;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.delete(key);
      return undefined;
    }
    return entry;
  }

  set(model, id, payload, expiresIn) {
    const key = `${model}:${id}`;
    this.delete(key);
    const stored = JSON.parse(JSON.stringify(payload));
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    this.entries.set(key, { model, id, payload: stored, expiresAt });
    addTo(this.byGrant, stored.grantId, key);
    addTo(this.byAccount, accountOf(model, stored), key);
    if (model === SESSION && stored.uid) this.sessionUids.set(stored.uid, id);
    if (stored.userCode) this.userCodes.set(stored.userCode, id);
  }

  delete(key) {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    const { model, id, payload } = entry;
    removeFrom(this.byGrant, payload.grantId, key);
    removeFrom(this.byAccount, accountOf(model, payload), key);
    if (model === SESSION && this.sessionUids.get(payload.uid) === id) {
      this.sessionUids.delete(payload.uid);
    }
    if (payload.userCode && this.userCodes.get(payload.userCode) === id) {
      this.userCodes.delete(payload.userCode);
    }
    return true;
  }

  // Every artifact of one grant (tokens, codes) and, in 9.x, the Grant itself; returns how
  // many tokens/codes went.
  revokeGrant(grantId) {
    let tokens = 0;
    for (const key of [...(this.byGrant.get(grantId) ?? [])]) {
      if (this.delete(key)) tokens += 1;
    }
    this.delete(`${GRANT}:${grantId}`);
    return tokens;
  }

  // What an administrator's "revoke all sessions / sign-in tokens" does: every grant of the
  // account (so every refresh token of every client), its remaining tokens and its sessions.
  revokeAccount(accountId) {
    const keys = [...(this.byAccount.get(accountId) ?? [])];
    const grantIds = new Set();
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry) grantIdsOf(entry.model, entry.id, entry.payload).forEach((g) => grantIds.add(g));
    }
    const counts = { grants: grantIds.size, tokens: 0, sessions: 0 };
    for (const grantId of grantIds) counts.tokens += this.revokeGrant(grantId);
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry && this.delete(key)) {
        if (entry.model === SESSION) counts.sessions += 1;
        else if (entry.model !== GRANT) counts.tokens += 1;
      }
    }
    return counts;
  }
}

// node-oidc-provider instantiates the adapter once per model: `new Adapter('RefreshToken')`.
export function createAdapter(store) {
  return class AccountIndexedAdapter {
    constructor(model) {
      this.model = model;
    }

    async upsert(id, payload, expiresIn) {
      store.set(this.model, id, payload, expiresIn);
    }

    async find(id) {
      const entry = store.get(this.model, id);
      return entry ? JSON.parse(JSON.stringify(entry.payload)) : undefined;
    }

    async findByUid(uid) {
      const id = store.sessionUids.get(uid);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = store.userCodes.get(userCode);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const entry = store.get(this.model, id);
      if (entry) entry.payload.consumed = epochTime();
    }

    async destroy(id) {
      store.delete(`${this.model}:${id}`);
    }

    async revokeByGrantId(grantId) { // eslint-disable-line class-methods-use-this
      store.revokeGrant(grantId);
    }
  };
}
