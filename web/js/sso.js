// Company sign-in (OpenID Connect): the provider buttons on the sign-in page, resuming
// a signed-in session at start, and signing out here and at the provider.

import { Api } from "./api.js";
import { $, el } from "./dom.js";

/** How one may sign in here: {keys: bool, providers: [{name, label, login_url}]}. */
export async function signInOptions() {
  try {
    const response = await fetch("/auth/providers", { credentials: "omit", cache: "no-store" });
    if (!response.ok) return { keys: true, providers: [] };
    return await response.json();
  } catch {
    return { keys: true, providers: [] };
  }
}

/** Show a button per provider; hide the key form when keys are off. */
export function renderOptions(options) {
  const box = $("#sso-providers");
  const buttons = (options.providers || []).map((p) =>
    el("a", { class: "btn btn-primary btn-block sso-button", text: `Sign in with ${p.label}`, attrs: { href: p.login_url, "data-provider": p.name } }),
  );
  box.replaceChildren(...buttons);
  box.hidden = buttons.length === 0;
  const keys = options.keys !== false;
  $("#signin-form").hidden = !keys;
  $("#signin-help").hidden = !keys;
  $("#sso-or").hidden = !(keys && buttons.length);
}

/** The signed-in session's caller, or null (no session cookie, or it ended). */
export async function resumeSession(hooks) {
  const api = new Api(null, hooks);
  try {
    const me = await api.me();
    return me.kind === "session" ? { api, me } : null;
  } catch {
    return null;
  }
}

/** Sign out of a session; go to the provider's logout page when it offers one. */
export async function endSession(api) {
  let redirect = null;
  try {
    redirect = await api.logout();
  } catch {
    // the session is gone already: nothing to end here
  }
  if (redirect && /^https?:\/\//.test(redirect)) window.location.assign(redirect);
}
