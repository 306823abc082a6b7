// Inhouse web chat: sign-in and the page's wiring; the collections, the conversations and
// the streamed answers live in js/. No build step; ES modules served by the service under a
// strict CSP. What the page reads from the API is typed in js/types.js (checked against
// /openapi.json by the tests).

import { AdminPage } from "./js/admin.js";
import { Api } from "./js/api.js";
import { ask, newChat, renderConversations, submit, updateSend } from "./js/chat.js";
import {
  globalError,
  optionExists,
  pickSlot,
  refreshCollections,
  renderSuggestions,
  setCollection,
  setLoading,
  stored,
} from "./js/collections.js";
import { $, el } from "./js/dom.js";
import { autosize, closeSidebar, followThread, openSidebar, showBanner } from "./js/layout.js";
import { SourcesPanel } from "./js/sources.js";
import { endSession, renderOptions, resumeSession, signInOptions } from "./js/sso.js";
import { canUpload, isAdmin, scopes, state, wide } from "./js/state.js";
import { ConversationStore, session } from "./js/store.js";
import { UploadDialog } from "./js/upload.js";

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
  followThread();
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

function boot() {
  state.sources = new SourcesPanel(null, { isWide: () => wide.matches });
  state.upload = new UploadDialog(null, {
    onIndexed: () => refreshCollections(),
    onError: (err) => globalError(err),
  });
  state.admin = new AdminPage();
  renderSuggestions((text) => ask(text));
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
