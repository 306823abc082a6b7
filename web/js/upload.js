// The upload dialog: drag and drop or pick files, one upload at a time with its own
// progress, then the ingest result per file (indexed, or failed with the reason).

import { $, el, formatBytes, icon } from "./dom.js";

const REASONS = {
  unsupported_type: "Unsupported file type",
  encrypted: "Password-protected",
  empty: "No text found",
  corrupt: "Damaged file",
  too_large: "Too large",
  timeout: "Took too long to read",
  ocr_unavailable: "Needs text recognition (OCR), which is not available",
  converter_unavailable: "Old Office format, no converter installed",
  parse_error: "Could not be read",
  invalid_filename: "Invalid file name",
  payload_too_large: "Too large",
  forbidden: "Not allowed",
  rate_limited: "Rate limited",
  too_many_uploads: "Too many uploads at once",
  uploads_busy: "The service is busy with other uploads",
  network_error: "Connection lost", // the page's own code: no answer came back
};

export class UploadDialog {
  constructor(api, { maxBytes = null, onIndexed = () => {}, onError = () => {} } = {}) {
    this.api = api;
    this.maxBytes = maxBytes;
    this.onIndexed = onIndexed;
    this.onError = onError;
    this.dialog = $("#upload-dialog");
    this.list = $("#upload-list");
    this.input = $("#upload-input");
    this.zone = $("#dropzone");
    this.queue = [];
    this.running = false;
    this.active = false;
    this.collection = "";
    this.counts = { indexed: 0, failed: 0 };
    this.input.addEventListener("change", () => {
      this.add(this.input.files);
      this.input.value = "";
    });
    for (const type of ["dragenter", "dragover"]) {
      this.zone.addEventListener(type, (e) => {
        e.preventDefault();
        this.zone.classList.add("dragging");
      });
    }
    for (const type of ["dragleave", "dragend"]) this.zone.addEventListener(type, () => this.zone.classList.remove("dragging"));
    this.zone.addEventListener("drop", (e) => {
      e.preventDefault();
      this.zone.classList.remove("dragging");
      this.add(e.dataTransfer.files);
    });
    this.dialog.addEventListener("close", () => {
      if (!this.running) this.clearFinished();
    });
    this.setLimit(maxBytes);
  }

  setLimit(maxBytes) {
    this.maxBytes = maxBytes;
    $("#upload-limit").textContent = maxBytes ? `Up to ${formatBytes(maxBytes)} per file.` : "";
  }

  open(collection) {
    if (collection !== this.collection && !this.running) this.clearFinished();
    this.collection = collection;
    $("#upload-collection").textContent = collection;
    if (!this.dialog.open) this.dialog.showModal();
  }

  clearFinished() {
    this.list.replaceChildren();
    this.counts = { indexed: 0, failed: 0 };
    this.summary();
  }

  add(files) {
    for (const file of Array.from(files || [])) {
      const row = this.row(file);
      this.list.append(row.li);
      if (this.maxBytes && file.size > this.maxBytes) {
        this.finish(row, { status: "failed", code: "too_large", message: `Larger than the ${formatBytes(this.maxBytes)} limit.` });
        continue;
      }
      this.queue.push({ file, row, collection: this.collection });
    }
    this.summary();
    this.pump();
  }

  row(file) {
    const state = el("span", { class: "upload-state", text: "Waiting" });
    const bar = el("progress", { class: "upload-bar", attrs: { max: "100", value: "0", "aria-label": `Upload progress of ${file.name}` } });
    const li = el(
      "li",
      { class: "upload-item", data: { state: "waiting" } },
      el("span", { class: "upload-icon" }, icon("file")),
      el(
        "div",
        { class: "upload-main" },
        el("div", { class: "upload-line" }, el("span", { class: "upload-name", text: file.name }), el("span", { class: "upload-size muted small", text: formatBytes(file.size) })),
        bar,
        state,
      ),
    );
    return { li, bar, state };
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    while (this.queue.length) {
      const { file, row, collection } = this.queue.shift();
      this.active = true;
      row.li.dataset.state = "uploading";
      row.state.textContent = "Uploading… 0%";
      try {
        const body = await this.api.upload(collection, file, (fraction) => {
          const pct = Math.round(fraction * 100);
          row.bar.value = pct;
          if (pct < 100) {
            row.state.textContent = `Uploading… ${pct}%`;
          } else {
            row.li.dataset.state = "indexing";
            row.bar.removeAttribute("value"); // indeterminate while the server indexes
            row.state.textContent = "Indexing…";
          }
        });
        /** @type {import("./types.js").UploadedFile} */
        const result = body.files[0];
        this.finish(row, result);
        if (result.status === "indexed" || result.status === "unchanged") this.onIndexed(collection, result);
      } catch (err) {
        this.finish(row, { status: "failed", code: err.code, message: err.message });
        this.onError(err);
      }
      this.active = false;
      this.summary();
    }
    this.running = false;
  }

  finish(row, result) {
    const ok = result.status === "indexed" || result.status === "unchanged";
    row.li.dataset.state = ok ? "done" : "failed";
    row.bar.value = 100;
    row.bar.hidden = true;
    row.li.querySelector(".upload-icon").replaceChildren(icon(ok ? "check" : "alert"));
    if (ok) {
      const parts = [result.status === "unchanged" ? "Already indexed" : "Indexed"];
      if (result.chunks) parts.push(`${result.chunks} passage${result.chunks === 1 ? "" : "s"}`);
      if (result.pages) parts.push(`${result.pages} page${result.pages === 1 ? "" : "s"}`);
      row.state.textContent = parts.join(" · ");
      this.counts.indexed++;
    } else {
      const code = result.code || "parse_error";
      row.state.replaceChildren(el("strong", { text: `Failed: ${REASONS[code] || code}` }), result.message ? ` — ${result.message}` : "");
      this.counts.failed++;
    }
  }

  summary() {
    const waiting = this.queue.length + (this.active ? 1 : 0);
    const parts = [];
    if (this.counts.indexed) parts.push(`${this.counts.indexed} indexed`);
    if (this.counts.failed) parts.push(`${this.counts.failed} failed`);
    if (waiting) parts.push(`${waiting} in progress`);
    $("#upload-summary").textContent = parts.join(" · ");
  }
}
