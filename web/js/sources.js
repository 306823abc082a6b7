// The sources panel: the numbered passages behind one answer, one of them shown in
// full with its document, page and a button that opens the original through the
// authenticated download route (PDFs at the cited page).

import { $, el, icon } from "./dom.js";

/**
 * A citation from the API (types.js Citation) in the shape the page keeps (stored
 * conversations hold this shape, so its names stay as they are).
 * @param {import("./types.js").Citation} raw
 */
export function normalizeSource(raw) {
  return {
    n: raw.n,
    documentId: raw.document_id,
    title: raw.title || raw.source.split("/").pop() || "Untitled document",
    source: raw.source,
    page: raw.page,
    pageEnd: raw.page_end,
    snippet: raw.snippet,
    score: raw.score,
    collection: raw.collection,
  };
}

export function pageLabel(source) {
  if (!source.page) return "";
  return source.pageEnd && source.pageEnd !== source.page ? `pp. ${source.page}–${source.pageEnd}` : `p. ${source.page}`;
}

function fileKind(source) {
  const ext = (source.source || source.title).split(".").pop().toLowerCase();
  return ext && ext.length <= 5 ? ext.toUpperCase() : "";
}

export class SourcesPanel {
  constructor(api, { isWide }) {
    this.api = api;
    this.isWide = isWide;
    this.root = $("#sources-panel");
    this.list = $("#source-list");
    this.empty = $("#sources-empty");
    this.toggleBtn = $("#sources-toggle");
    this.passage = $("#passage");
    this.turn = null;
    this.selected = null;
    $("#sources-close").addEventListener("click", () => this.close());
    this.toggleBtn.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    $("#passage-open").addEventListener("click", () => this.openOriginal());
  }

  get isOpen() {
    return !this.root.hidden;
  }

  open({ focus = false } = {}) {
    this.root.hidden = false;
    this.toggleBtn.setAttribute("aria-expanded", "true");
    document.body.classList.add("sources-open");
    if (focus) (this.selected ? this.passage : $("#sources-close")).focus({ preventScroll: true });
  }

  close() {
    this.root.hidden = true;
    this.toggleBtn.setAttribute("aria-expanded", "false");
    document.body.classList.remove("sources-open");
  }

  reset() {
    this.turn = null;
    this.selected = null;
    this.render();
    this.close();
    this.toggleBtn.hidden = true;
  }

  /** Show the sources of ``turn``; select source ``n`` when given. */
  show(turn, n = null, { open = true, focus = false } = {}) {
    this.turn = turn;
    this.selected = n;
    this.render();
    this.toggleBtn.hidden = !turn.sources.length;
    if (open && (n !== null || this.isWide())) this.open({ focus });
  }

  render() {
    const sources = this.turn ? this.turn.sources : [];
    this.empty.hidden = sources.length > 0;
    const count = $("#sources-count");
    count.hidden = !sources.length;
    count.textContent = `${sources.length} source${sources.length === 1 ? "" : "s"} for this answer`;
    this.list.replaceChildren(
      ...sources.map((s) => {
        const button = el(
          "button",
          {
            class: "source-item",
            attrs: { type: "button", "aria-current": s.n === this.selected ? "true" : null },
            on: { click: () => this.show(this.turn, s.n, { focus: true }) },
          },
          el("span", { class: "source-num", text: s.n }),
          el(
            "span",
            { class: "source-text" },
            el("span", { class: "source-title", text: s.title }),
            el("span", { class: "source-meta", text: [fileKind(s), pageLabel(s), s.collection].filter(Boolean).join(" · ") }),
            el("span", { class: "source-snippet", text: s.snippet }),
          ),
        );
        return el("li", {}, button);
      }),
    );
    const source = sources.find((s) => s.n === this.selected);
    this.passage.hidden = !source;
    if (!source) return;
    $("#passage-number").textContent = String(source.n);
    $("#passage-title").textContent = source.title;
    const meta = [pageLabel(source), source.source !== source.title ? source.source : "", source.collection]
      .filter(Boolean)
      .join(" · ");
    $("#passage-meta").textContent = meta;
    $("#passage-text").textContent = source.snippet;
    $("#passage-status").textContent = "";
    const open = $("#passage-open");
    open.disabled = !source.documentId;
    open.querySelector("span").textContent = fileKind(source) === "PDF" && source.page ? `Open PDF at ${pageLabel(source)}` : "Open original";
    this.passage.scrollIntoView?.({ block: "nearest" });
  }

  async openOriginal() {
    const source = this.turn?.sources.find((s) => s.n === this.selected);
    if (!source) return;
    const status = $("#passage-status");
    // Open the tab now, while the click still counts as a user gesture.
    const win = window.open("", "_blank");
    status.textContent = "Opening…";
    try {
      const file = await this.api.download(source.documentId);
      const isPdf = file.type === "application/pdf" || /\.pdf$/i.test(file.name);
      if (isPdf) {
        const url = URL.createObjectURL(new Blob([file.blob], { type: "application/pdf" }));
        const target = source.page ? `${url}#page=${source.page}` : url;
        if (win) {
          win.opener = null;
          win.location.href = target;
        } else {
          window.open(target, "_blank", "noopener");
        }
        setTimeout(() => URL.revokeObjectURL(url), 120_000);
        status.textContent = "";
      } else {
        win?.close();
        // Never render other types in our origin: save them instead.
        const url = URL.createObjectURL(new Blob([file.blob], { type: "application/octet-stream" }));
        const a = el("a", { attrs: { href: url, download: file.name } });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        status.textContent = `Downloaded ${file.name}`;
      }
    } catch (err) {
      win?.close();
      status.textContent = err.code === "not_found" ? "The original file is no longer available." : err.code === "forbidden" ? "Your key may not open this document." : `Could not open the document (${err.message}).`;
    }
  }
}

/** Compact source chips under an answer. */
export function sourceChips(turn, onPick) {
  const wrap = el("div", { class: "chips", attrs: { role: "list", "aria-label": "Sources" } });
  for (const s of turn.sources) {
    const cited = !turn.cited || turn.cited.includes(s.n);
    wrap.append(
      el(
        "button",
        {
          class: `chip${cited ? "" : " chip-uncited"}`,
          attrs: { type: "button", role: "listitem", title: `${s.title}${s.page ? ` · ${pageLabel(s)}` : ""}` },
          on: { click: () => onPick(s.n) },
        },
        el("span", { class: "chip-num", text: s.n }),
        icon("file", "icon icon-xs"),
        el("span", { class: "chip-title", text: s.title }),
        s.page ? el("span", { class: "chip-page", text: pageLabel(s) }) : null,
      ),
    );
  }
  return wrap;
}
