// Inhouse web chat: sign-in, collections, conversations and the streamed answers.
// No build step; ES modules served by the service under a strict CSP. What the page reads
// from the API is typed in js/types.js (checked against /openapi.json by the tests).

import { Api, ApiError } from "./js/api.js";
import { $, el, icon, timeAgo } from "./js/dom.js";
import { normalizeSource, SourcesPanel } from "./js/sources.js";
import { ConversationStore, session } from "./js/store.js";
import { TurnView } from "./js/turn.js";
import { UploadDialog } from "./js/upload.js";
import { AdminPage } from "./js/admin.js";
import { endSession, renderOptions, resumeSession, signInOptions } from "./js/sso.js";

const ALL = "*";
const HISTORY_TURNS = 6;
const SUGGESTIONS = [
  "Summarise the main topics covered in these documents",
  "What deadlines or dates are mentioned?",
  "Which rules apply to new employees?",
];
const wide = window.matchMedia("(min-width: 1100px)");

const state = {
  api: null,
  /** @type {import("./js/types.js").Me | null} */
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
};

// ---------------------------------------------------------------- caller --
function scopes() {
  return new Set(state.me?.scopes || []);
}
function isAdmin() {
  return scopes().has("admin");
}
function canReason() {
  return state.me?.reasoning === true; // the server folds admin into it
}
function readsAll() {
  return Boolean(state.me?.collections.includes(ALL));
}
function canUpload(collection = state.collection) {
  if (!state.me || !collection || collection === ALL) return false;
  // sessions: where the policy lets uploads go; keys: the ingest scope on what they read
  const writable = state.me.writable;
  if (writable) return writable.includes(collection) || writable.includes(ALL);
  return state.me.ingest && (readsAll() || state.me.collections.includes(collection));
}
function searched() {
  if (!state.collections.length) return [];
  if (state.collection === ALL) return state.collections.map((c) => c.name);
  return state.collection ? [state.collection] : [];
}

// ---------------------------------------------------------------- sign-in --
function showSignin(notice = "") {
  $("#app-view").hidden = true;
  $("#signin-view").hidden = false;
  const box = $("#signin-notice");
  box.hidden = !notice;
  box.querySelector("span").textContent = notice;
  $("#signin-key").value = "";
  $("#signin-key").focus();
  signInOptions().then(renderOptions);
}

function signinError(message) {
  const node = $("#signin-error");
  node.textContent = message;
  node.hidden = !message;
  $("#signin-key").setAttribute("aria-invalid", message ? "true" : "false");
}

async function signIn(key, { remembered = false } = {}) {
  const api = new Api(key, { onUnauthorized: () => expire() });
  const submit = $("#signin-submit");
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    const me = await api.me();
    state.api = api;
    state.me = me;
    session.key = key;
    await enterApp();
  } catch (err) {
    if (remembered && err.status === 401) {
      session.key = null;
      showSignin("Your session has expired. Sign in again to continue.");
    } else if (err.status === 401 || err.status === 403) {
      signinError("This key was not accepted. Check it, or ask your administrator for a new one.");
    } else if (err.code === "rate_limited") {
      signinError(`Too many attempts. Try again in ${err.retryAfter || 60} seconds.`);
    } else if (err.code === "network_error") {
      signinError("Inhouse can't be reached right now. Check your connection and try again.");
    } else {
      signinError(`Sign-in failed: ${err.message || err}`);
    }
    if (remembered && err.status !== 401) {
      $("#signin-view").hidden = false;
    }
  } finally {
    submit.disabled = false;
    submit.textContent = "Sign in";
  }
}

function signOut(notice = "") {
  if (state.api && !state.api.key) endSession(state.api); // a signed-in session: end it
  state.controller?.abort();
  session.key = null;
  state.api = null;
  state.me = null;
  state.conversation = null;
  state.queued = false;
  state.views.clear();
  $("#messages").replaceChildren();
  state.sources?.reset();
  if ($("#upload-dialog").open) $("#upload-dialog").close();
  if (!state.upload.running) state.upload.clearFinished();
  showSignin(notice);
}

function expire() {
  if (!state.api) return;
  signOut("Your session has expired or your key was revoked. Sign in again to continue.");
}

// ------------------------------------------------------------------- app --
async function enterApp() {
  const me = state.me;
  state.store = new ConversationStore(me.id);
  state.sources.api = state.api;
  state.upload.api = state.api;
  state.upload.setLimit(me.limits.upload_mb * 1024 * 1024);
  $("#user-name").textContent = me.name || "Signed in";
  $("#user-role").textContent = roleLabel();
  $("#user-avatar").textContent = initials(me.name || "?");
  $("#signout").hidden = me.kind === "anonymous"; // INHOUSE_AUTH=disabled: nobody signs in
  state.admin.attach(state.api, isAdmin());
  $("#signin-view").hidden = true;
  $("#app-view").hidden = false;
  $("#collection-select").replaceChildren(el("option", { text: "Loading…", attrs: { value: "" } }));
  $("#welcome-collection").textContent = "your collections";
  setLoading(true);
  await refreshCollections();
  if (state.me !== me) return; // signed out (or in as someone else) meanwhile
  const remembered = stored(pickSlot());
  if (remembered && optionExists(remembered)) setCollection(remembered);
  renderConversations();
  newChat();
  const waiting = state.queued;
  setLoading(false);
  if (waiting) submit();
}

/** While the collection list loads, a question waits in the box (never dropped). */
function setLoading(loading) {
  state.loading = loading;
  if (!loading) state.queued = false;
  $("#composer-hint").hidden = loading;
  $("#composer-wait").hidden = !loading;
  $("#composer-wait").textContent = state.queued
    ? "Your question will be sent as soon as your collections have loaded…"
    : "Loading your collections…";
}

function roleLabel() {
  const s = scopes();
  if (state.me.kind === "anonymous") return "Sign-in is off";
  if (s.has("admin")) return "Administrator";
  const parts = [];
  if (s.has("query")) parts.push("Ask");
  if (s.has("ingest")) parts.push("Upload");
  if (s.has("reasoning:read")) parts.push("Audit");
  return parts.join(" · ") || "Limited access";
}

function initials(name) {
  const words = name.replace(/[^\p{L}\p{N} ]/gu, " ").trim().split(/\s+/);
  return ((words[0]?.[0] || "?") + (words[1]?.[0] || "")).toUpperCase();
}

function pickSlot() {
  return `inhouse.collection.${state.me?.id || "default"}`;
}

function stored(slot, value) {
  try {
    if (value === undefined) return localStorage.getItem(slot);
    localStorage.setItem(slot, value);
  } catch {
    // storage disabled: nothing remembered
  }
  return null;
}

function optionExists(value) {
  return Array.from($("#collection-select").options).some((o) => o.value === value);
}

async function refreshCollections() {
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

function setCollection(name) {
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

function updateWelcome() {
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
  $("#suggestions").replaceChildren(
    ...SUGGESTIONS.map((text) =>
      el(
        "li",
        {},
        el("button", { class: "suggestion", attrs: { type: "button" }, on: { click: () => ask(text) } }, icon("chat", "icon icon-sm"), el("span", { text })),
      ),
    ),
  );
}

// --------------------------------------------------------- conversations --
function renderConversations() {
  const list = $("#conversation-list");
  const items = state.store.list();
  $("#conversation-empty").hidden = items.length > 0;
  list.replaceChildren(
    ...items.map((c) => {
      const active = state.conversation && state.conversation.id === c.id;
      return el(
        "li",
        { class: `conv${active ? " active" : ""}` },
        el(
          "button",
          {
            class: "conv-open",
            attrs: { type: "button", "aria-current": active ? "page" : null },
            on: { click: () => openConversation(c.id) },
          },
          el("span", { class: "conv-title", text: c.title || "New conversation" }),
          el("span", { class: "conv-meta", text: [c.collection === ALL ? "all collections" : c.collection, timeAgo(c.updatedAt)].filter(Boolean).join(" · ") }),
        ),
        el(
          "button",
          {
            class: "icon-btn icon-btn-sm conv-delete",
            attrs: { type: "button", "aria-label": `Delete conversation: ${c.title || "untitled"}`, title: "Delete" },
            on: { click: () => deleteConversation(c.id) },
          },
          icon("trash", "icon icon-sm"),
        ),
      );
    }),
  );
}

function newChat() {
  state.controller?.abort();
  state.conversation = null;
  state.views.clear();
  $("#messages").replaceChildren();
  state.sources.reset();
  updateWelcome();
  renderConversations();
  closeSidebar();
  $("#question").focus();
}

function openConversation(id) {
  const conversation = state.store.get(id);
  if (!conversation) return;
  state.controller?.abort();
  state.conversation = structuredClone(conversation);
  if (conversation.collection && optionExists(conversation.collection)) setCollection(conversation.collection);
  state.views.clear();
  const nodes = state.conversation.turns.map((turn) => {
    const view = new TurnView(turn, turnHooks());
    state.views.set(turn.id, view);
    return view.root;
  });
  $("#messages").replaceChildren(...nodes);
  updateWelcome();
  const last = state.conversation.turns.at(-1);
  if (last?.sources.length) state.sources.show(last, null, { open: false });
  else state.sources.reset();
  renderConversations();
  closeSidebar();
  scrollToEnd(true);
}

function deleteConversation(id) {
  state.store.remove(id);
  if (state.conversation?.id === id) newChat();
  else renderConversations();
}

// ----------------------------------------------------------------- chat --
function turnHooks() {
  return {
    canReason: canReason(),
    onCite: (turn, n) => state.sources.show(turn, n, { focus: !wide.matches }),
    onRetry: (turn) => ask(turn.question, { replace: turn }),
    onUpload: () => state.upload.open(state.collection),
    canUpload: () => canUpload(),
    loadReasoning: loadReasoning,
  };
}

async function loadReasoning(turn, view) {
  view.setReasoningText("", " · loading…");
  try {
    const record = await state.api.reasoning(turn.requestId);
    turn.reasoning = record.reasoning;
  } catch (err) {
    view.setReasoningText(err.status === 404 ? "This reasoning record is no longer kept (retention)." : `Could not load the reasoning (${err.message}).`, "");
    return;
  }
  view.update();
}

function historyFor(conversation, upTo) {
  const turns = conversation.turns.slice(0, upTo).filter((t) => t.answer && !t.error);
  return turns.slice(-HISTORY_TURNS).flatMap((t) => [
    { role: "user", content: t.question },
    { role: "assistant", content: t.answer },
  ]);
}

function newTurnId() {
  return `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
}

function setBusy(busy) {
  state.busy = busy;
  $("#send").hidden = busy;
  $("#stop").hidden = !busy;
  $("#composer").classList.toggle("busy", busy);
  updateSend();
}

function updateSend() {
  $("#send").disabled = state.busy || !$("#question").value.trim();
}

async function ask(question, { replace = null } = {}) {
  question = question.trim();
  if (!question || state.busy) return;
  if (state.loading) {
    // the collection list is not there yet: keep the question in the box, send it after
    $("#question").value = question;
    queue();
    return;
  }
  if (!state.conversation) {
    state.conversation = state.store.create(state.collection);
    state.conversation.title = question.slice(0, 80);
  }
  const conversation = state.conversation;
  let index = conversation.turns.length;
  if (replace) {
    index = conversation.turns.findIndex((t) => t.id === replace.id);
    conversation.turns.splice(index, 1);
    state.views.get(replace.id)?.root.remove();
    state.views.delete(replace.id);
  }
  const turn = {
    id: newTurnId(),
    question,
    answer: "",
    sources: [],
    cited: null,
    notice: null,
    error: null,
    stopped: false,
    requestId: null,
    meta: "",
    collection: state.collection,
    createdAt: new Date().toISOString(),
    pending: true,
  };
  // A first question streams its reasoning live (auditors); follow-ups load it afterwards.
  const history = historyFor(conversation, index);
  if (canReason() && !history.length) turn.reasoning = "";
  conversation.turns.splice(index, 0, turn);
  const view = new TurnView(turn, turnHooks());
  state.views.set(turn.id, view);
  const after = conversation.turns[index + 1];
  $("#messages").insertBefore(view.root, after ? state.views.get(after.id)?.root || null : null);
  $("#welcome").hidden = true;
  scrollToEnd(true);

  // A first question goes to /v1/query (extract fallback, live reasoning for auditors);
  // follow-ups carry the earlier turns through the multi-turn chat route.
  const collections = searched();
  const stream = history.length
    ? (signal) => state.api.followUp({ question, history, collections }, signal)
    : (signal) => state.api.ask({ question, collections, fallback: "extract", include_reasoning: canReason() }, signal);
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const started = performance.now();
  try {
    for await (const { event, data } of stream(controller.signal)) {
      if (controller.signal.aborted) break;
      handleEvent(turn, view, event, data);
      scrollToEnd();
    }
    if (controller.signal.aborted) turn.stopped = true;
  } catch (err) {
    if (controller.signal.aborted || err?.name === "AbortError") {
      turn.stopped = true;
    } else {
      const apiError = err instanceof ApiError ? err : new ApiError(0, "network_error", String(err?.message || err));
      turn.error = { code: apiError.code, message: apiError.message, retryAfter: apiError.retryAfter };
      globalError(apiError);
    }
  } finally {
    if (state.controller === controller) state.controller = null;
    turn.pending = false;
    if (turn.answer) {
      const ms = Number.isFinite(turn.totalMs) ? turn.totalMs : performance.now() - started;
      turn.meta = [`${(ms / 1000).toFixed(1)} s`, turn.model].filter(Boolean).join(" · ");
    }
    delete turn.totalMs;
    view.update();
    setBusy(false);
    if (state.conversation === conversation && state.api) {
      state.store.put(conversation);
      renderConversations();
    }
    scrollToEnd();
  }
}

/** One SSE event of the answer stream (types.js: SourcesEvent, TextEvent, DoneEvent, ErrorDetail). */
function handleEvent(turn, view, event, data) {
  switch (event) {
    case "sources": {
      turn.sources = data.citations.map(normalizeSource);
      turn.requestId = data.request_id || turn.requestId;
      view.update();
      if (turn.sources.length) state.sources.show(turn, null, { open: wide.matches });
      break;
    }
    case "token": {
      const first = !turn.answer;
      turn.answer += data.text;
      if (first) view.update();
      else view.scheduleAnswer();
      break;
    }
    case "reasoning":
      if (canReason()) {
        turn.reasoning = (turn.reasoning || "") + data.text;
        view.update();
      }
      break;
    case "done": {
      // follow-ups (chat completions) carry no cited, usage, timings or final answer
      turn.requestId = data.request_id || turn.requestId;
      if (data.cited) turn.cited = data.cited;
      if (data.notice) turn.notice = data.notice;
      turn.mode = data.mode;
      turn.grounding = data.grounding || null;
      if (data.usage) turn.reasoned = data.usage.reasoning_chars > 0;
      // the final answer: strict grounding may have replaced what streamed by an extract
      if (data.answer !== undefined && (!turn.answer || turn.mode === "extract")) turn.answer = data.answer;
      turn.totalMs = data.timings?.total_ms;
      turn.model = turn.notice ? "" : data.model;
      view.update();
      break;
    }
    case "error":
      throw new ApiError(null, data.code, data.message, { detail: data.detail || null });
    default:
      break; // comments (keep-alives) never get here; an unknown event is ignored
  }
}

function globalError(err) {
  if (!err) return;
  if (err.code === "network_error") showBanner("offline", "Inhouse can't be reached. Check your connection; your conversation is kept.", "Retry", () => refreshCollections());
  else if (err.code === "rate_limited") showBanner("clock", `You're sending requests too quickly. Try again in ${err.retryAfter || "a few"} seconds.`);
}

// ---------------------------------------------------------------- layout --
function showBanner(iconName, text, actionLabel = "", action = null) {
  const banner = $("#banner");
  $("#banner-icon").setAttribute("href", `#i-${iconName}`);
  $("#banner-text").textContent = text;
  const button = $("#banner-action");
  button.hidden = !actionLabel;
  button.textContent = actionLabel;
  button.onclick = action
    ? () => {
        banner.hidden = true;
        action();
      }
    : null;
  banner.hidden = false;
}

let stickToEnd = true;
function scrollToEnd(force = false) {
  const thread = $("#thread");
  if (force || stickToEnd) thread.scrollTop = thread.scrollHeight;
}

function openSidebar() {
  document.body.classList.add("sidebar-open");
  $("#scrim").hidden = false;
  $("#sidebar-open").setAttribute("aria-expanded", "true");
  $("#new-chat").focus();
}

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("#scrim").hidden = true;
  $("#sidebar-open").setAttribute("aria-expanded", "false");
}

function autosize() {
  const area = $("#question");
  area.style.height = "auto";
  area.style.height = `${Math.min(area.scrollHeight, 220)}px`;
}

function bind() {
  $("#signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("#signin-key").value.trim();
    if (!key) {
      signinError("Enter your API key.");
      return;
    }
    signinError("");
    signIn(key);
  });
  $("#signout").addEventListener("click", () => signOut());
  $("#new-chat").addEventListener("click", () => newChat());
  $("#sidebar-open").addEventListener("click", openSidebar);
  $("#sidebar-close").addEventListener("click", closeSidebar);
  $("#scrim").addEventListener("click", () => {
    closeSidebar();
    if (!wide.matches) state.sources?.close();
  });
  $("#collection-select").addEventListener("change", (e) => {
    setCollection(e.target.value);
    stored(pickSlot(), e.target.value);
    if (state.conversation?.turns.length && state.conversation.collection !== e.target.value) newChat();
  });
  $("#upload-open").addEventListener("click", () => state.upload.open(state.collection));
  $("#empty-upload").addEventListener("click", () => state.upload.open(state.collection));
  $("#banner-close").addEventListener("click", () => ($("#banner").hidden = true));
  const question = $("#question");
  question.addEventListener("input", () => {
    autosize();
    updateSend();
  });
  question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  $("#composer").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  $("#stop").addEventListener("click", () => {
    state.controller?.abort();
    question.focus();
  });
  $("#thread").addEventListener("scroll", (e) => {
    const t = e.target;
    stickToEnd = t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      closeSidebar();
      if (!wide.matches && state.sources?.isOpen) state.sources.close();
    }
  });
  window.addEventListener("offline", () => showBanner("offline", "You're offline. Answers will resume when the connection is back."));
  window.addEventListener("online", () => ($("#banner").hidden = true));
  // Dropping files anywhere on the chat opens the upload dialog.
  window.addEventListener("dragover", (e) => {
    if (state.api && canUpload() && e.dataTransfer?.types?.includes("Files")) {
      e.preventDefault();
      if (!$("#upload-dialog").open) state.upload.open(state.collection);
    }
  });
  window.addEventListener("drop", (e) => {
    if (e.target.closest?.("#dropzone")) return;
    e.preventDefault();
  });
}

function queue() {
  state.queued = true;
  setLoading(true);
  $("#question").focus();
}

function submit() {
  const area = $("#question");
  const text = area.value.trim();
  if (!text || state.busy) return;
  if (state.loading) {
    queue(); // the text stays in the box until it is sent
    return;
  }
  area.value = "";
  autosize();
  updateSend();
  ask(text);
}

function boot() {
  state.sources = new SourcesPanel(null, { isWide: () => wide.matches });
  state.upload = new UploadDialog(null, {
    onIndexed: () => refreshCollections(),
    onError: (err) => globalError(err),
  });
  state.admin = new AdminPage();
  bind();
  const key = session.key;
  if (key) signIn(key, { remembered: true });
  else resumeSignedIn();
}

async function resumeSignedIn() {
  const resumed = await resumeSession({ onUnauthorized: () => expire() });
  if (!resumed) return showSignin();
  state.api = resumed.api;
  state.me = resumed.me;
  await enterApp();
}

boot();
