// The service's HTTP API as the page uses it: JSON calls, the SSE answer stream,
// uploads with progress, and authenticated downloads. The key travels only in the
// Authorization header (never in a URL). Without a key (company sign-in) the session
// cookie goes along, and requests that change state carry the session's CSRF token.
// The shapes read here are the typedefs of types.js (checked against /openapi.json).

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

// The service's codes for bare HTTP statuses (service/api/errors.py), for an error body
// that is not the service's own (a proxy's HTML page, a cut connection).
const HTTP_CODES = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "payload_too_large", 429: "rate_limited" };

/** An ApiError from an error response ({error: ErrorDetail}, see types.js ErrorBody). */
async function errorFrom(response) {
  /** @type {import("./types.js").ErrorDetail | null} */
  let err = null;
  try {
    err = (await response.json()).error || null;
  } catch {
    // not JSON: keep the status
  }
  const code = err?.code || HTTP_CODES[response.status] || `http_${response.status}`;
  return new ApiError(response.status, code, err?.message || null, { retryAfter: retryAfterOf(response), detail: err?.detail || null });
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

  /** @returns {Promise<import("./types.js").Me>} */
  async me() {
    const me = await this.json("/v1/me");
    if (me.csrf_token) this.csrf = me.csrf_token;
    return me;
  }

  /** End a signed-in session; resolves with the provider's logout URL, if any. */
  async logout() {
    /** @type {import("./types.js").Logout} */
    const body = await this.json("/auth/logout", { method: "POST" });
    return body.redirect || null;
  }

  /** @returns {Promise<import("./types.js").Collection[]>} */
  async collections() {
    /** @type {import("./types.js").Collections} */
    const body = await this.json("/v1/collections");
    return body.collections;
  }

  /** @returns {Promise<import("./types.js").ReasoningRecord>} */
  reasoning(requestId) {
    return this.json(`/v1/reasoning/${encodeURIComponent(requestId)}`);
  }

  /**
   * POST a streaming query; yields its SSE events (sources, reasoning, token, then done
   * or error: see types.js) until the stream ends.
   */
  async *ask(payload, signal) {
    const response = await this.fetch("/v1/query", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ ...payload, stream: true }),
      signal,
    });
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
    let requestId = null;
    for await (const { data } of readEvents(response.body, signal)) {
      if (data === "[DONE]") return;
      if (data.error) {
        /** @type {import("./types.js").ChatStreamError} */
        const failed = data;
        yield { event: "error", data: failed.error };
        return;
      }
      /** @type {import("./types.js").ChatChunk} */
      const chunk = data;
      if (chunk.inhouse_sources) {
        requestId = chunk.inhouse_request_id;
        yield { event: "sources", data: { request_id: requestId, citations: chunk.inhouse_sources } };
      }
      const choice = chunk.choices[0];
      if (choice?.delta.content) yield { event: "token", data: { text: choice.delta.content } };
      if (choice?.finish_reason) {
        const done = { request_id: requestId, model: chunk.model, mode: chunk.inhouse_mode };
        if (chunk.inhouse_notice) done.notice = chunk.inhouse_notice;
        if (chunk.inhouse_grounding) done.grounding = chunk.inhouse_grounding;
        if (chunk.inhouse_answer !== undefined) done.answer = chunk.inhouse_answer;
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
   * Resolves with the server's answer (types.js UploadResult); rejects with ApiError.
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
        const err = body?.error || {}; // ErrorBody, unless a proxy answered
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
