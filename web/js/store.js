// Browser-side state: the API key for this tab (sessionStorage) and the caller's
// conversations (localStorage, per caller id). Reasoning is never stored.

const KEY_SLOT = "inhouse.key";
const MAX_CONVERSATIONS = 60;
const MAX_TURNS = 100;

export const session = {
  get key() {
    try {
      return sessionStorage.getItem(KEY_SLOT);
    } catch {
      return null;
    }
  },
  set key(value) {
    try {
      if (value) sessionStorage.setItem(KEY_SLOT, value);
      else sessionStorage.removeItem(KEY_SLOT);
    } catch {
      // storage disabled: the key lives only in memory
    }
  },
};

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Conversations of one caller, newest first. */
export class ConversationStore {
  constructor(ownerId) {
    this.slot = `inhouse.conversations.${ownerId}`;
    this.items = this.load();
  }

  load() {
    try {
      const raw = JSON.parse(localStorage.getItem(this.slot) || "[]");
      return Array.isArray(raw) ? raw.filter((c) => c && typeof c.id === "string" && Array.isArray(c.turns)) : [];
    } catch {
      return [];
    }
  }

  save() {
    const data = this.items.slice(0, MAX_CONVERSATIONS);
    for (let keep = data.length; keep > 0; keep = Math.floor(keep / 2)) {
      try {
        localStorage.setItem(this.slot, JSON.stringify(data.slice(0, keep)));
        return;
      } catch {
        // quota: drop the oldest half and retry
      }
    }
  }

  list() {
    return this.items;
  }

  get(id) {
    return this.items.find((c) => c.id === id) || null;
  }

  create(collection) {
    const now = new Date().toISOString();
    return { id: newId(), title: "", collection, createdAt: now, updatedAt: now, turns: [] };
  }

  /** Insert or update a conversation (moved to the top) and persist. */
  put(conversation) {
    const clean = {
      ...conversation,
      updatedAt: new Date().toISOString(),
      turns: conversation.turns.slice(-MAX_TURNS).map(storableTurn),
    };
    this.items = [clean, ...this.items.filter((c) => c.id !== conversation.id)];
    this.save();
  }

  remove(id) {
    this.items = this.items.filter((c) => c.id !== id);
    this.save();
  }

  clear() {
    this.items = [];
    try {
      localStorage.removeItem(this.slot);
    } catch {
      // nothing to clear
    }
  }
}

function storableTurn(turn) {
  const { reasoning, pending, ...rest } = turn; // reasoning stays out of browser storage
  return rest;
}
