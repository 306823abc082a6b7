// The admin page (scope admin): collections, failures by reason, sources and runs,
// API keys (create: the secret shown once; revoke) and signed-in sessions (end one).
// Everything comes from the HTTP API (/v1/collections, /v1/admin/*, /v1/sources).

import { $, el, copyText, timeAgo, toast } from "./dom.js";

const SCOPES = ["query", "ingest", "reasoning:read", "metrics", "admin"];

function table(headers, rows) {
  return el(
    "table",
    { class: "admin-table" },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h, attrs: { scope: "col" } })))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c ?? ""))))),
  );
}

function when(iso) {
  return iso ? timeAgo(iso) : "—";
}

function eta(seconds) {
  if (!Number.isFinite(seconds)) return "";
  return seconds < 90 ? `${Math.round(seconds)} s left` : `${Math.round(seconds / 60)} min left`;
}

export class AdminPage {
  constructor() {
    this.api = null;
    this.dialog = $("#admin-dialog");
    $("#admin-open").addEventListener("click", () => this.open());
    $("#admin-refresh").addEventListener("click", () => this.render());
    $("#admin-key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createKey();
    });
  }

  /** Called on every sign-in: show the entry point to admins only. */
  attach(api, isAdmin) {
    this.api = api;
    $("#admin-open").hidden = !isAdmin;
    if (!isAdmin && this.dialog.open) this.dialog.close();
  }

  open() {
    if (!this.dialog.open) this.dialog.showModal();
    this.render();
  }

  async section(id, load) {
    const box = $(`#${id}`);
    box.replaceChildren(el("p", { class: "muted small", text: "Loading…" }));
    try {
      box.replaceChildren(await load());
    } catch (err) {
      box.replaceChildren(el("p", { class: "field-error", text: err.message || String(err) }));
    }
  }

  render() {
    this.section("admin-collections", () => this.collections());
    this.section("admin-failures", () => this.failures());
    this.section("admin-sources", () => this.sources());
    this.section("admin-keys", () => this.keys());
    this.section("admin-sessions", () => this.sessions());
  }

  async collections() {
    const list = await this.api.collections();
    if (!list.length) return el("p", { class: "muted small", text: "No collections yet." });
    return table(
      ["Collection", "Documents", "Chunks", "Failed", "Pending", "Last indexed"],
      list.map((c) => [c.name, String(c.documents ?? 0), String(c.chunks ?? 0), String(c.failed ?? 0), String(c.pending ?? 0), when(c.last_indexed_at)]),
    );
  }

  async failures() {
    const body = await this.api.json("/v1/admin/failures");
    if (!body.reasons.length) return el("p", { class: "muted small", text: "No failed documents." });
    return el(
      "div",
      {},
      ...body.reasons.map((r) =>
        el(
          "details",
          { class: "admin-failure" },
          el("summary", { text: `${r.code} · ${r.count} file${r.count === 1 ? "" : "s"}` }),
          el("ul", {}, ...r.files.map((f) => el("li", { text: `${f.collection}/${f.path}${f.message ? ` — ${f.message}` : ""}` }))),
        ),
      ),
    );
  }

  async sources() {
    let body;
    try {
      body = await this.api.json("/v1/sources");
    } catch (err) {
      if (err.status === 404) return el("p", { class: "muted small", text: "No sources file is configured (INHOUSE_SOURCES)." });
      throw err;
    }
    if (!body.sources.length) return el("p", { class: "muted small", text: "No sources." });
    return table(
      ["Source", "Collection", "Schedule", "Last run", "Progress", "Next run"],
      body.sources.map((s) => {
        const last = s.last_runs[0];
        const run = s.running;
        const progress = run
          ? `${run.progress.files_done}/${run.progress.files_total ?? "?"} ${eta(run.progress.eta_s)}${run.progress.workers ? ` (${run.progress.workers} workers)` : ""}`.trim()
          : "idle";
        return [s.name, s.collection, s.enabled ? s.schedule : `${s.schedule} (off)`, last ? `${last.outcome} ${when(last.finished_at || last.started_at)}` : "never", progress, when(s.next_run_at)];
      }),
    );
  }

  async keys() {
    const form = $("#admin-key-form");
    let body;
    try {
      body = await this.api.json("/v1/admin/keys");
    } catch (err) {
      if (err.status === 403 && err.detail?.reason === "key_only") {
        form.hidden = true;
        return el("p", { class: "muted small", text: "API keys are managed with an admin API key (sign in with it), never from a browser session." });
      }
      throw err;
    }
    form.hidden = false;
    return table(
      ["Key", "Name", "Scopes", "Collections", "Created", ""],
      body.keys.map((k) => [
        k.key_id,
        k.name,
        k.scopes.join(", "),
        k.collections.join(", "),
        when(k.created_at),
        k.active
          ? el("button", { class: "btn btn-small btn-secondary", text: "Revoke", attrs: { type: "button", "aria-label": `Revoke key ${k.key_id}` }, on: { click: () => this.revokeKey(k.key_id) } })
          : el("span", { class: "muted small", text: "revoked" }),
      ]),
    );
  }

  async createKey() {
    const name = $("#admin-key-name").value.trim();
    const scopes = SCOPES.filter((s) => $(`#admin-key-scope-${s.replace(":", "-")}`).checked);
    const collections = $("#admin-key-collections").value.split(",").map((c) => c.trim()).filter(Boolean);
    const out = $("#admin-key-secret");
    try {
      const body = await this.api.json("/v1/admin/keys", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, scopes, collections: collections.length ? collections : ["*"] }),
      });
      out.replaceChildren(
        el("span", { text: "New key (shown once): " }),
        el("code", { class: "admin-secret", text: body.key }),
        el("button", { class: "btn btn-small btn-secondary", text: "Copy", attrs: { type: "button" }, on: { click: async () => toast((await copyText(body.key)) ? "Copied" : "Copy failed") } }),
      );
      out.hidden = false;
      $("#admin-key-name").value = "";
      this.section("admin-keys", () => this.keys());
    } catch (err) {
      out.replaceChildren(el("span", { class: "field-error", text: err.message || String(err) }));
      out.hidden = false;
    }
  }

  async revokeKey(keyId) {
    try {
      await this.api.json(`/v1/admin/keys/${encodeURIComponent(keyId)}`, { method: "DELETE" });
      toast(`Key ${keyId} revoked`);
    } catch (err) {
      toast(err.message || String(err));
    }
    this.section("admin-keys", () => this.keys());
  }

  async sessions() {
    let body;
    try {
      body = await this.api.json("/v1/admin/sessions");
    } catch (err) {
      if (err.status === 404) return el("p", { class: "muted small", text: "Company sign-in is off (INHOUSE_AUTH)." });
      throw err;
    }
    if (!body.sessions.length) return el("p", { class: "muted small", text: "Nobody is signed in." });
    return table(
      ["User", "Groups", "Signed in", "Last seen", ""],
      body.sessions.map((s) => [
        `${s.name}${s.email ? ` <${s.email}>` : ""}`,
        s.groups.join(", "),
        when(s.created_at),
        when(s.last_seen),
        s.current
          ? el("span", { class: "muted small", text: "this session" })
          : el("button", { class: "btn btn-small btn-secondary", text: "End", attrs: { type: "button", "aria-label": `End the session of ${s.name}` }, on: { click: () => this.endSession(s.ref) } }),
      ]),
    );
  }

  async endSession(ref) {
    try {
      await this.api.json(`/v1/admin/sessions/${encodeURIComponent(ref)}`, { method: "DELETE" });
      toast("Session ended");
    } catch (err) {
      toast(err.message || String(err));
    }
    this.section("admin-sessions", () => this.sessions());
  }
}
