// One question and its answer in the thread: the user's bubble, then the assistant's
// status, reasoning (only for keys that may read it), notice, streamed markdown
// answer, sources, error card and actions.

import { copyText, el, icon, spinner, toast } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { pageLabel, sourceChips } from "./sources.js";

const ERRORS = {
  model_unavailable: ["The language model is unreachable", "offline"],
  model_missing: ["The language model is not installed", "alert"],
  model_timeout: ["The model took too long to answer", "clock"],
  model_protocol_error: ["The model sent a broken reply", "alert"],
  model_error: ["The model failed", "alert"],
  no_answer: ["The model did not finish its answer", "alert"],
  no_documents: ["No documents yet", "folder"],
  rate_limited: ["Slow down a little", "clock"],
  network_error: ["Can't reach Inhouse", "offline"],
  forbidden: ["Not allowed", "lock"],
  unauthorized: ["Your session has expired", "lock"],
  invalid_request: ["That question can't be asked", "alert"],
  collection_not_found: ["That collection no longer exists", "folder"],
};

const NOTICE_TITLES = {
  model_unavailable: "The language model is unreachable right now.",
  model_missing: "The language model is not installed on the server.",
  model_timeout: "The language model took too long to answer.",
  model_error: "The language model could not answer.",
  grounding_failed: "The model's answer stated figures that are not in its sources.",
};
const INFERRED_TIP = "added by Inhouse, not cited by the model";
const UNSUPPORTED_TIP = {
  figure: "This figure was not found in the sources this answer cites. Check it before relying on it.",
  quote: "This quotation was not found in the sources this answer cites.",
};

/**
 * @param turn  the stored turn object (mutated by the chat controller)
 * @param hooks {canReason, onCite(turn, n), onRetry(turn), onUpload(), canUpload(), loadReasoning(turn)}
 */
export class TurnView {
  constructor(turn, hooks) {
    this.turn = turn;
    this.hooks = hooks;
    this.frame = 0;
    this.status = el("div", { class: "status-line", attrs: { role: "status" } });
    this.reasoning = null;
    this.notice = el("div", { class: "notice-slot" });
    this.answer = el("div", { class: "answer markdown" });
    this.sources = el("div", { class: "sources-slot" });
    this.error = el("div", { class: "error-slot" });
    this.actions = el("div", { class: "msg-actions" });
    this.body = el("div", { class: "msg-body" }, this.status, this.notice, this.answer, this.sources, this.error, this.actions);
    this.root = el(
      "li",
      { class: "turn", data: { turn: turn.id } },
      el("div", { class: "msg msg-user" }, el("div", { class: "bubble", text: turn.question })),
      el("div", { class: "msg msg-assistant" }, el("span", { class: "bot-avatar", attrs: { "aria-hidden": "true" } }, icon("logo", "icon")), this.body),
    );
    if (this.hasReasoning()) this.ensureReasoning();
    this.update();
  }

  /**
   * Whether the answer has reasoning to show (to keys that may read it): while it streams,
   * once some arrived; afterwards, for a generated answer, unless none was recorded.
   * Extracts and passage lists (model down, extract mode) have none.
   */
  hasReasoning() {
    const turn = this.turn;
    if (!this.hooks.canReason) return false;
    if (turn.pending) return Boolean(turn.reasoning);
    if (!turn.requestId || (turn.mode && turn.mode !== "model")) return false;
    return turn.reasoned !== false;
  }

  ensureReasoning() {
    if (this.reasoning) return this.reasoning;
    const text = el("div", { class: "reasoning-text" });
    const label = el("span", { class: "reasoning-state muted" });
    const details = el(
      "details",
      { class: "reasoning" },
      el("summary", {}, icon("bulb", "icon icon-sm"), el("span", { text: "Reasoning" }), label),
      el("p", { class: "reasoning-note muted small", text: "How the model worked towards its answer. Visible to auditors only; not part of the answer." }),
      text,
    );
    details.addEventListener("toggle", () => {
      if (details.open && !this.turn.pending && this.turn.reasoning === undefined) this.hooks.loadReasoning(this.turn, this);
    });
    this.reasoning = { details, text, label };
    this.body.insertBefore(details, this.notice);
    return this.reasoning;
  }

  setReasoningText(text, state = "") {
    const r = this.ensureReasoning();
    r.text.textContent = text;
    r.label.textContent = state;
  }

  /** Re-render the streamed answer at most once per frame. */
  scheduleAnswer() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderAnswer();
    });
  }

  renderAnswer() {
    const turn = this.turn;
    const inferred = turn.pending ? new Map() : inferredMarks(turn.answer, turn.grounding?.attributed || [], turn.sources.length);
    const seen = new Map();
    const citation = (n) => {
      const source = turn.sources.find((s) => s.n === n);
      const k = seen.get(n) || 0;
      seen.set(n, k + 1);
      const added = Boolean(inferred.get(n)?.has(k));
      let label = source ? `Source ${n}: ${source.title}${source.page ? `, ${pageLabel(source)}` : ""}` : `Source ${n}`;
      if (added) label += ` (${INFERRED_TIP})`;
      return el("button", {
        class: added ? "cite cite-inferred" : "cite",
        text: n,
        data: added ? { n, inferred: "true" } : { n },
        attrs: { type: "button", "aria-label": label, title: label },
        on: { click: () => this.hooks.onCite(turn, n) },
      });
    };
    this.answer.replaceChildren(renderMarkdown(turn.answer, { citation, sourceCount: turn.sources.length }));
    this.answer.classList.toggle("streaming", Boolean(turn.pending && turn.answer));
    this.answer.classList.toggle("extract", turn.mode === "extract");
    const unsupported = turn.mode === "extract" ? [] : turn.grounding?.unsupported || [];
    if (!turn.pending && unsupported.length) markUnsupported(this.answer, unsupported);
  }

  extractLabel() {
    return el(
      "p",
      { class: "extract-label", data: { mode: "extract" } },
      icon("quote", "icon icon-sm"),
      el("span", { text: "Quoted from your documents, not written by a model" }),
    );
  }

  groundingWarning() {
    const g = this.turn.grounding;
    if (!g || this.turn.pending || this.turn.mode === "extract") return null;
    const figures = (g.unsupported || []).filter((u) => u.kind !== "quote").length;
    const quotes = (g.unsupported || []).length - figures;
    const invalid = g.invalid_citations || [];
    const parts = [];
    if (figures) parts.push(`${figures} figure${figures === 1 ? "" : "s"}`);
    if (quotes) parts.push(`${quotes} quotation${quotes === 1 ? "" : "s"}`);
    let text = parts.length ? `${parts.join(" and ")} in this answer ${figures + quotes === 1 ? "was" : "were"} not found in the cited sources (marked).` : "";
    if (invalid.length) text += `${text ? " " : ""}The model cited ${invalid.map((n) => `[${n}]`).join(", ")}, which point${invalid.length === 1 ? "s" : ""} to no source${g.attributed ? " (removed)" : ""}.`;
    if (!text) return null;
    return el("p", { class: "grounding-warning", attrs: { role: "note" } }, icon("alert", "icon icon-sm"), el("span", { text }));
  }

  attributedNote() {
    const marks = this.turn.grounding?.attributed || [];
    if (!marks.length || this.turn.pending || this.turn.mode !== "model") return null;
    return el("p", { class: "attributed-note muted small", attrs: { role: "note" } }, `Dashed citations were added by Inhouse: the model cited nothing there, and ${marks.length === 1 ? "that sentence shares" : "those sentences share"} most of ${marks.length === 1 ? "its" : "their"} words with the source.`);
  }

  update() {
    const turn = this.turn;
    this.root.classList.toggle("pending", Boolean(turn.pending));
    // status line
    let status = null;
    if (turn.pending && !turn.answer) {
      if (!turn.sources.length) status = "Searching your documents…";
      else status = `Reading ${turn.sources.length} passage${turn.sources.length === 1 ? "" : "s"}${this.reasoning ? " and thinking" : ""}…`;
    }
    this.status.replaceChildren(...(status ? [spinner(status), el("span", { text: status })] : []));
    this.status.hidden = !status;
    // reasoning: live for first questions, loaded on demand for follow-ups and history
    if (this.hasReasoning()) this.ensureReasoning();
    else if (this.reasoning) {
      this.reasoning.details.remove();
      this.reasoning = null;
    }
    if (this.reasoning) {
      const text = turn.reasoning || "";
      if (turn.pending) this.setReasoningText(text, text ? (turn.answer ? "" : " · thinking…") : " · waiting…");
      else if (turn.reasoning !== undefined) this.setReasoningText(text || "No reasoning was recorded for this answer.", "");
    }
    // notice (model down or unsupported figures: an extract, or the passages only)
    this.notice.replaceChildren();
    const extract = turn.mode === "extract";
    if (extract) this.notice.append(this.extractLabel());
    if (turn.notice && turn.notice.code !== "extract") {
      const title = NOTICE_TITLES[turn.notice.code] || NOTICE_TITLES.model_error;
      this.notice.append(
        el(
          "div",
          { class: "notice notice-warn model-notice", attrs: { role: "note" }, data: { code: turn.notice.code || "" } },
          icon(turn.notice.code === "model_timeout" ? "clock" : turn.notice.code === "grounding_failed" ? "alert" : "offline"),
          el(
            "div",
            {},
            el("strong", { text: title }),
            el("p", { text: extract ? "Below are the sentences from your documents that best match your question, quoted as they are." : turn.sources.length ? "Here are the passages that best match your question instead of a written answer." : "No passages matched your question either." }),
            turn.notice.message ? el("p", { class: "notice-detail", text: turn.notice.message }) : null,
          ),
        ),
      );
    }
    this.renderAnswer();
    const warning = this.groundingWarning();
    if (warning) this.answer.after(warning);
    this.body.querySelectorAll(".grounding-warning").forEach((w) => w !== warning && w.remove());
    const note = this.attributedNote();
    if (note) (warning || this.answer).after(note);
    this.body.querySelectorAll(".attributed-note").forEach((w) => w !== note && w.remove());
    // sources
    this.sources.replaceChildren();
    if (turn.sources.length && turn.notice && !turn.answer) {
      this.sources.append(this.passageCards());
    } else if (turn.sources.length) {
      this.sources.append(sourceChips(turn, (n) => this.hooks.onCite(turn, n)));
    }
    // error
    this.error.replaceChildren();
    if (turn.error) this.error.append(this.errorCard(turn.error));
    if (turn.stopped) this.error.append(el("p", { class: "stopped muted small", text: "Stopped." }));
    // actions
    this.actions.replaceChildren();
    this.actions.hidden = Boolean(turn.pending);
    if (!turn.pending && turn.answer) {
      const copy = el(
        "button",
        { class: "btn btn-quiet btn-small", attrs: { type: "button", "aria-label": "Copy answer" } },
        icon("copy", "icon icon-sm"),
        el("span", { text: "Copy" }),
      );
      copy.addEventListener("click", async () => {
        const ok = await copyText(turn.answer);
        copy.replaceChildren(icon(ok ? "check" : "alert", "icon icon-sm"), el("span", { text: ok ? "Copied" : "Copy failed" }));
        if (ok) toast("Answer copied to the clipboard");
        setTimeout(() => copy.replaceChildren(icon("copy", "icon icon-sm"), el("span", { text: "Copy" })), 2000);
      });
      this.actions.append(copy);
    }
    if (!turn.pending && (turn.error || turn.stopped)) {
      this.actions.append(
        el(
          "button",
          { class: "btn btn-quiet btn-small", attrs: { type: "button" }, on: { click: () => this.hooks.onRetry(turn) } },
          icon("retry", "icon icon-sm"),
          el("span", { text: "Retry" }),
        ),
      );
    }
    if (!turn.pending && turn.meta) this.actions.append(el("span", { class: "msg-meta muted small", text: turn.meta }));
  }

  passageCards() {
    const list = el("ol", { class: "passage-cards" });
    for (const s of this.turn.sources) {
      list.append(
        el(
          "li",
          {},
          el(
            "button",
            { class: "passage-card", attrs: { type: "button" }, on: { click: () => this.hooks.onCite(this.turn, s.n) } },
            el(
              "span",
              { class: "passage-card-head" },
              el("span", { class: "source-num", text: s.n }),
              el("span", { class: "source-title", text: s.title }),
              s.page ? el("span", { class: "muted small", text: pageLabel(s) }) : null,
            ),
            el("span", { class: "passage-card-text", text: s.snippet }),
          ),
        ),
      );
    }
    return list;
  }

  errorCard(error) {
    const [title, iconName] = ERRORS[error.code] || ["Something went wrong", "alert"];
    let message = error.message || "";
    const extra = [];
    if (error.code === "rate_limited") {
      message = error.retryAfter ? `You've asked a lot of questions in a short time. Try again in ${error.retryAfter} s.` : "You've asked a lot of questions in a short time. Try again in a moment.";
    } else if (error.code === "network_error") {
      message = "The service did not respond. Check your connection, then retry.";
    } else if (error.code === "no_documents") {
      if (this.hooks.canUpload()) {
        message = "This collection is empty. Add documents and ask again.";
        extra.push(
          el(
            "button",
            { class: "btn btn-primary btn-small", attrs: { type: "button" }, on: { click: () => this.hooks.onUpload() } },
            icon("upload", "icon icon-sm"),
            el("span", { text: "Upload documents" }),
          ),
        );
      } else {
        message = "This collection is empty. Ask an administrator to add documents to it.";
      }
    }
    return el(
      "div",
      { class: `error-card error-${error.code}`, attrs: { role: "alert" }, data: { code: error.code } },
      icon(iconName),
      el("div", {}, el("strong", { text: title }), el("p", { text: message }), ...extra),
    );
  }
}

/** Wrap each unsupported figure or quote (in answer order) in a focusable mark with its explanation. */
/**
 * Which citation marks of `answer` the service inserted: n -> the indexes, among the marks
 * that name n (in order), of the inserted ones (`attributed` spans point at them).
 * @param {string} answer
 * @param {import("./types.js").AttributedMark[]} attributed
 * @param {number} sourceCount  marks naming another number stay text (as in markdown.js)
 */
function inferredMarks(answer, attributed, sourceCount) {
  const out = new Map();
  if (!attributed.length) return out;
  // the server counts code points, JavaScript strings UTF-16 units
  const units = (point) => {
    let at = 0;
    let i = 0;
    for (const ch of answer) {
      if (i++ >= point) break;
      at += ch.length;
    }
    return at;
  };
  const starts = new Set(attributed.map((a) => units(a.span[0])));
  const count = new Map();
  for (const m of answer.matchAll(/\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\](?!\()/g)) {
    const numbers = m[1].split(/\s*[,;]\s*/).map(Number);
    if (!numbers.every((n) => n >= 1 && n <= sourceCount)) continue;
    for (const n of numbers) {
      const k = count.get(n) || 0;
      count.set(n, k + 1);
      if (starts.has(m.index)) {
        if (!out.has(n)) out.set(n, new Set());
        out.get(n).add(k);
      }
    }
  }
  return out;
}

function markUnsupported(root, unsupported) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node);
  let index = 0;
  let from = 0;
  for (const item of unsupported) {
    while (index < nodes.length) {
      const node = nodes[index];
      const at = findWhole(node.data, item.text, from);
      if (at < 0) {
        index += 1;
        from = 0;
        continue;
      }
      const tip = UNSUPPORTED_TIP[item.kind] || UNSUPPORTED_TIP.figure;
      const rest = node.splitText(at);
      const tail = rest.splitText(item.text.length);
      const kind = item.kind === "quote" ? "quote" : "figure";
      const mark = el("mark", { class: "unsupported", attrs: { tabindex: "0", "data-tip": tip, "aria-describedby": tipId(root, kind) }, data: { kind } }, rest.data);
      const side = () => {
        // open the explanation towards the wider side, so the thread never clips it
        const box = root.getBoundingClientRect();
        mark.dataset.side = mark.getBoundingClientRect().left - box.left > box.width / 2 ? "left" : "right";
      };
      mark.addEventListener("mouseenter", side);
      mark.addEventListener("focus", side);
      rest.replaceWith(mark);
      nodes[index] = tail;
      from = 0;
      break;
    }
  }
  for (const [kind, tip] of Object.entries(UNSUPPORTED_TIP)) root.append(el("span", { text: tip, attrs: { id: tipId(root, kind), hidden: true } }));
}

let tipCount = 0;
function tipId(root, kind) {
  if (!root.dataset.tips) root.dataset.tips = String(++tipCount);
  return `unsupported-tip-${root.dataset.tips}-${kind}`;
}

/** Index of `needle` in `text` from `from`, not inside a longer number or word ("5" in "25"). */
function findWhole(text, needle, from) {
  for (let at = text.indexOf(needle, from); at >= 0; at = text.indexOf(needle, at + 1)) {
    const before = text[at - 1] || " ";
    const after = text[at + needle.length] || " ";
    const glued = (c) => /[\p{L}\p{N}]/u.test(c);
    if (!(glued(needle[0]) && glued(before)) && !(glued(needle.at(-1)) && /\p{N}/u.test(after))) return at;
  }
  return -1;
}
