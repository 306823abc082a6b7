// Company sign-in (OpenID Connect): the provider buttons on the sign-in page, resuming
// a signed-in session at start, and signing out here and at the provider.

import { Api } from "./api.js";
import { $, el } from "./dom.js";

/** How one may sign in here (types.js Providers). */
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

/**
 * The caller the page is already admitted as, or null (sign in first): a signed-in
 * session (its cookie), or everyone when the service runs with INHOUSE_AUTH=disabled.
 */
export async function resumeSession(hooks) {
  const api = new Api(null, hooks);
  try {
    const me = await api.me();
    return me.kind === "session" || me.kind === "anonymous" ? { api, me } : null;
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
