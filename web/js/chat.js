// The conversation list and the thread: asking (first questions on /v1/query, follow-ups with
// the earlier turns on the chat route), the streamed SSE events, and the composer.

import { ApiError } from "./api.js";
import { $, el, icon, timeAgo } from "./dom.js";
import { globalError, optionExists, setCollection, setLoading, updateWelcome } from "./collections.js";
import { autosize, closeSidebar, scrollToEnd } from "./layout.js";
import { normalizeSource } from "./sources.js";
import { ALL, canReason, canUpload, searched, state, wide } from "./state.js";
import { TurnView } from "./turn.js";

const HISTORY_TURNS = 6;

// --------------------------------------------------------- conversations --
export function renderConversations() {
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

export function newChat() {
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

export function updateSend() {
  $("#send").disabled = state.busy || !$("#question").value.trim();
}

export async function ask(question, { replace = null } = {}) {
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
      // the final answer replaces what streamed: citations attributed after the fact (marks
      // to no source removed), or an extract when strict grounding replaced the answer
      if (data.answer !== undefined) turn.answer = data.answer;
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

// ------------------------------------------------------------- composer --
function queue() {
  state.queued = true;
  setLoading(true);
  $("#question").focus();
}

export function submit() {
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
