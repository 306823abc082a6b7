// Page chrome: the banner, the thread's scroll position, the sidebar and the question box's height.

import { $ } from "./dom.js";

export function showBanner(iconName, text, actionLabel = "", action = null) {
  const banner = $("#banner");
  $("#banner-icon").setAttribute("href", `#i-${iconName}`);
  $("#banner-text").textContent = text;
  const button = $("#banner-action");
  button.hidden = !actionLabel;
  button.textContent = actionLabel;
  button.onclick = action
    ? () => {
        banner.hidden = true;
        action();
      }
    : null;
  banner.hidden = false;
}

let stickToEnd = true;
export function scrollToEnd(force = false) {
  const thread = $("#thread");
  if (force || stickToEnd) thread.scrollTop = thread.scrollHeight;
}

/** Keep following the answer while the reader stays near the end of the thread. */
export function followThread() {
  $("#thread").addEventListener("scroll", (e) => {
    const t = e.target;
    stickToEnd = t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  });
}

export function openSidebar() {
  document.body.classList.add("sidebar-open");
  $("#scrim").hidden = false;
  $("#sidebar-open").setAttribute("aria-expanded", "true");
  $("#new-chat").focus();
}

export function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("#scrim").hidden = true;
  $("#sidebar-open").setAttribute("aria-expanded", "false");
}

export function autosize() {
  const area = $("#question");
  area.style.height = "auto";
  area.style.height = `${Math.min(area.scrollHeight, 220)}px`;
}
