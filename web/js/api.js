// The service's HTTP API as the page uses it: JSON calls, the SSE answer stream,
// uploads with progress, and authenticated downloads. The key travels only in the
// Authorization header (never in a URL). Without a key (company sign-in) the session
// cookie goes along, and requests that change state carry the session's CSRF token.

export class ApiError extends Error {
  constructor(status, code, message, { retryAfter = null, detail = null } = {}) {
    super(message || code || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code || (status === 0 ? "network_error" : `http_${status}`);
    this.retryAfter = retryAfter;
    this.detail = detail;
  }
}

function retryAfterOf(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds));
  const when = Date.parse(value);
  return Number.isFinite(when) ? Math.max(0, Math.round((when - Date.now()) / 1000)) : null;
}

async function errorFrom(response) {
  let code = null;
  let message = null;
  let detail = null;
  try {
    const body = await response.json();
    const err = body && (body.error || body.detail || body);
    if (err && typeof err === "object") {
      code = typeof err.code === "string" ? err.code : null;
      message = typeof err.message === "string" ? err.message : null;
      detail = err.detail || null;
    } else if (typeof err === "string") {
      message = err;
    }
  } catch {
    // not JSON: keep the status
  }
  if (!code) {
    code = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large", 429: "rate_limited" }[response.status] || `http_${response.status}`;
  }
  return new ApiError(response.status, code, message, { retryAfter: retryAfterOf(response), detail });
}

/** Parse a text/event-stream body into {event, data} objects (data JSON-decoded). */
export async function* readEvents(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data = [];
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, cut);
        buffer = buffer.slice(cut + (buffer.startsWith("\r\n", cut) ? 2 : 1));
        if (line === "") {
          if (data.length) {
            const raw = data.join("\n");
            let parsed = raw;
            try {
              parsed = JSON.parse(raw);
            } catch {
              // plain-text data
            }
            yield { event, data: parsed };
          }
          event = "message";
          data = [];
        } else if (line.startsWith(":")) {
          // comment / keep-alive
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") event = value || "message";
          else if (field === "data") data.push(value);
        }
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock?.();
  }
}

export class Api {
  /** @param {string} key  @param {{onUnauthorized?: (err: ApiError) => void}} hooks */
  constructor(key, hooks = {}) {
    this.key = key;
    this.hooks = hooks;
    this.csrf = null; // a signed-in session's X-CSRF-Token (from /v1/me)
  }

  headers(extra = {}) {
    if (this.key) return { Authorization: `Bearer ${this.key}`, ...extra };
    return this.csrf ? { "X-CSRF-Token": this.csrf, ...extra } : { ...extra };
  }

  async fetch(path, init = {}) {
    let response;
    try {
      response = await fetch(path, {
        ...init,
        headers: this.headers(init.headers),
        credentials: this.key ? "omit" : "same-origin",
        cache: "no-store",
        redirect: "error",
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError(0, "network_error", "The service could not be reached.");
    }
    if (!response.ok) {
      const error = await errorFrom(response);
      if (response.status === 401) this.hooks.onUnauthorized?.(error);
      throw error;
    }
    return response;
  }

  async json(path, init = {}) {
    const response = await this.fetch(path, init);
    return response.json();
  }

  async me() {
    const me = await this.json("/v1/me");
    if (me && typeof me.csrf_token === "string") this.csrf = me.csrf_token;
    return me;
  }

  /** End a signed-in session; resolves with the provider's logout URL, if any. */
  async logout() {
    const body = await this.json("/auth/logout", { method: "POST" });
    return body && typeof body.redirect === "string" ? body.redirect : null;
  }

  async collections() {
    const body = await this.json("/v1/collections");
    const list = Array.isArray(body) ? body : body.collections || [];
    return list.map((c) => (typeof c === "string" ? { name: c } : c));
  }

  reasoning(requestId) {
    return this.json(`/v1/reasoning/${encodeURIComponent(requestId)}`);
  }

  /** POST a streaming query; yields SSE events until the stream ends. */
  async *ask(payload, signal) {
    const response = await this.fetch("/v1/query", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ ...payload, stream: true }),
      signal,
    });
    const type = response.headers.get("Content-Type") || "";
    if (!type.includes("text/event-stream")) {
      // A non-streamed JSON answer (e.g. the sources-only fallback): replay it as events.
      const body = await response.json();
      yield* replayAnswer(body);
      return;
    }
    yield* readEvents(response.body, signal);
  }

  /**
   * A follow-up question with the earlier turns, through the OpenAI-compatible route
   * (multi-turn; the answer only, never reasoning). Yields the same events as ask().
   */
  async *followUp({ question, history, collections }, signal) {
    const response = await this.fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({
        messages: [...history, { role: "user", content: question }],
        collections,
        stream: true,
      }),
      signal,
    });
    for await (const { data } of readEvents(response.body, signal)) {
      if (data === "[DONE]") return;
      if (!data || typeof data !== "object") continue;
      if (data.error) {
        yield { event: "error", data: data.error };
        return;
      }
      if (Array.isArray(data.inhouse_sources)) {
        yield { event: "sources", data: { request_id: data.inhouse_request_id, citations: data.inhouse_sources } };
      }
      const choice = (data.choices || [])[0];
      const text = choice?.delta?.content;
      if (text) yield { event: "token", data: { text } };
      if (choice?.finish_reason) {
        const done = { request_id: data.inhouse_request_id || String(data.id || "").replace(/^chatcmpl-/, ""), model: data.model, mode: data.inhouse_mode };
        if (data.inhouse_notice) done.notice = data.inhouse_notice;
        if (data.inhouse_grounding) done.grounding = data.inhouse_grounding;
        if (typeof data.inhouse_answer === "string") done.answer = data.inhouse_answer;
        yield { event: "done", data: done };
      }
    }
  }

  /** The original file of a document as a Blob, with its file name. */
  async download(documentId) {
    const response = await this.fetch(`/v1/documents/${encodeURIComponent(documentId)}/file`);
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
    const plain = /filename="?([^";]+)"?/i.exec(disposition);
    let name = "document";
    try {
      name = star ? decodeURIComponent(star[1]) : plain ? plain[1] : name;
    } catch {
      // keep the default
    }
    return { blob, name, type: (response.headers.get("Content-Type") || "").split(";")[0] };
  }

  /**
   * Upload one file into a collection; onProgress(fraction) while sending.
   * Resolves with the server's per-file result; rejects with ApiError.
   */
  upload(collection, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/v1/collections/${encodeURIComponent(collection)}/documents`);
      for (const [name, value] of Object.entries(this.headers())) xhr.setRequestHeader(name, value);
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress?.(e.loaded / e.total);
      };
      xhr.upload.onload = () => onProgress?.(1);
      xhr.onerror = () => reject(new ApiError(0, "network_error", "The upload was interrupted."));
      xhr.onload = () => {
        const body = xhr.response;
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(body);
          return;
        }
        const err = (body && body.error) || {};
        const retry = Number(xhr.getResponseHeader("Retry-After"));
        const error = new ApiError(xhr.status, err.code, err.message, {
          retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
        });
        if (xhr.status === 401) this.hooks.onUnauthorized?.(error);
        reject(error);
      };
      const form = new FormData();
      form.append("files", file, file.name);
      xhr.send(form);
    });
  }
}

/** Turn a non-streamed /v1/query response into the events the stream would have carried. */
function* replayAnswer(body) {
  yield { event: "sources", data: { citations: body.citations || [], request_id: body.request_id } };
  if (body.notice || body.fallback) yield { event: "notice", data: body.notice || { code: "model_unavailable" } };
  if (body.reasoning) yield { event: "reasoning", data: { text: body.reasoning } };
  if (body.answer) yield { event: "token", data: { text: body.answer } };
  yield { event: "done", data: body };
}
