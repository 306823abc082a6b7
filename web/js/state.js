// The page's state, shared by its modules, and what the signed-in caller may do: read from
// /v1/me (typed in types.js), never guessed.

export const ALL = "*";
export const wide = window.matchMedia("(min-width: 1100px)");

export const state = {
  api: null,
  /** @type {import("./types.js").Me | null} */
  me: null,
  collections: [],
  collection: "",
  store: null,
  conversation: null,
  views: new Map(),
  controller: null,
  busy: false,
  loading: false, // the collection list is on its way: questions wait for it
  queued: false, // a question waits in the box for the collection list
  sources: null,
  upload: null,
  admin: null,
};

export function scopes() {
  return new Set(state.me?.scopes || []);
}

export function isAdmin() {
  return scopes().has("admin");
}

export function canReason() {
  return state.me?.reasoning === true; // the server folds admin into it
}

export function readsAll() {
  return Boolean(state.me?.collections.includes(ALL));
}

export function canUpload(collection = state.collection) {
  if (!state.me || !collection || collection === ALL) return false;
  // sessions: where the policy lets uploads go; keys: the ingest scope on what they read
  const writable = state.me.writable;
  if (writable) return writable.includes(collection) || writable.includes(ALL);
  return state.me.ingest && (readsAll() || state.me.collections.includes(collection));
}

/** The collections a question searches: the chosen one, or every listed one for ALL. */
export function searched() {
  if (!state.collections.length) return [];
  if (state.collection === ALL) return state.collections.map((c) => c.name);
  return state.collection ? [state.collection] : [];
}
