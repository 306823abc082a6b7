// The collection picker (remembered per caller), the welcome panel under it, the "still
// loading" state that holds a question back, and the banners for errors that concern the page.

import { $, el, icon } from "./dom.js";
import { showBanner } from "./layout.js";
import { ALL, canUpload, readsAll, searched, state } from "./state.js";

const SUGGESTIONS = [
  "Summarise the main topics covered in these documents",
  "What deadlines or dates are mentioned?",
  "Which rules apply to new employees?",
];

export function pickSlot() {
  return `inhouse.collection.${state.me?.id || "default"}`;
}

export function stored(slot, value) {
  try {
    if (value === undefined) return localStorage.getItem(slot);
    localStorage.setItem(slot, value);
  } catch {
    // storage disabled: nothing remembered
  }
  return null;
}

export function optionExists(value) {
  return Array.from($("#collection-select").options).some((o) => o.value === value);
}

export async function refreshCollections() {
  let list = [];
  try {
    list = await state.api.collections();
  } catch (err) {
    globalError(err);
    list = state.collections;
  }
  if (!state.me) return; // signed out while the list was on its way
  state.collections = list;
  const select = $("#collection-select");
  const previous = state.collection || select.value;
  const options = state.collections.map((c) => el("option", { text: c.name, attrs: { value: c.name } }));
  if (state.collections.length > 1) options.unshift(el("option", { text: "All my collections", attrs: { value: ALL } }));
  if (!state.collections.length) {
    const named = state.me.collections.filter((c) => c !== ALL);
    const fallback = readsAll() || !named.length ? state.me.default_collection : named[0];
    options.push(el("option", { text: fallback, attrs: { value: fallback } }));
  }
  select.replaceChildren(...options);
  const preferred = [previous, state.collections.length === 1 ? state.collections[0].name : null].find((v) => v && optionExists(v));
  setCollection(preferred || select.options[0]?.value || "");
}

export function setCollection(name) {
  state.collection = name;
  $("#collection-select").value = name;
  const info = state.collections.find((c) => c.name === name);
  const docs = name === ALL ? state.collections.reduce((n, c) => n + (c.documents || 0), 0) : info?.documents;
  $("#collection-meta").textContent = Number.isFinite(docs) ? `${docs} document${docs === 1 ? "" : "s"}` : "";
  $("#upload-open").hidden = !canUpload(name);
  $("#welcome-collection").textContent = name === ALL ? "all your collections" : name;
  updateWelcome();
}

function isEmptyCollection() {
  if (!state.collections.length) return true;
  const names = searched();
  const infos = state.collections.filter((c) => names.includes(c.name));
  const known = infos.filter((c) => Number.isFinite(c.documents) || Number.isFinite(c.chunks));
  return known.length > 0 && known.every((c) => !(c.documents || c.chunks));
}

export function updateWelcome() {
  const showWelcome = !state.conversation || state.conversation.turns.length === 0;
  $("#welcome").hidden = !showWelcome;
  const empty = isEmptyCollection();
  $("#empty-collection").hidden = !empty;
  $("#suggestions").hidden = empty;
  $("#welcome-text").hidden = empty;
  $("#empty-upload").hidden = !canUpload();
  $("#empty-text").textContent = canUpload()
    ? `Upload PDFs, Word files, slides or text into ${state.collection} and they become searchable within moments.`
    : "There is nothing to search here yet. Ask an administrator to add documents to this collection.";
}

/** The suggested first questions (the same for every collection). */
export function renderSuggestions(onPick) {
  $("#suggestions").replaceChildren(
    ...SUGGESTIONS.map((text) =>
      el(
        "li",
        {},
        el("button", { class: "suggestion", attrs: { type: "button" }, on: { click: () => onPick(text) } }, icon("chat", "icon icon-sm"), el("span", { text })),
      ),
    ),
  );
}

/** While the collection list loads, a question waits in the box (never dropped). */
export function setLoading(loading) {
  state.loading = loading;
  if (!loading) state.queued = false;
  $("#composer-hint").hidden = loading;
  $("#composer-wait").hidden = !loading;
  $("#composer-wait").textContent = state.queued
    ? "Your question will be sent as soon as your collections have loaded…"
    : "Loading your collections…";
}

export function globalError(err) {
  if (!err) return;
  if (err.code === "network_error") showBanner("offline", "Inhouse can't be reached. Check your connection; your conversation is kept.", "Retry", () => refreshCollections());
  else if (err.code === "rate_limited") showBanner("clock", `You're sending requests too quickly. Try again in ${err.retryAfter || "a few"} seconds.`);
}
