// Inline markdown for the renderer in markdown.js: code spans, emphasis, strikethrough,
// citation marks, links and autolinks, line breaks. Like the block renderer it never
// parses HTML: text becomes Text nodes and elements are made with createElement; link
// targets pass safeUrl (http, https, mailto or relative) or stay text.

const CITE = /^\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]/;
const AUTOLINK = /^(https?:\/\/[^\s<>"'`]+)/;
const ANGLE_LINK = /^<(https?:\/\/[^\s<>"'`]+)>/;
const PUNCT = /[!-/:-@[-`{-~]/;
const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const WORD = /[\p{L}\p{N}]/u;

/** An element with an optional class and text (the renderer's only element factory). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The URL if it is safe to link to (http, https, mailto or relative), else null. */
export function safeUrl(raw) {
  const value = String(raw || "").trim();
  if (!value) return null;
  let url;
  try {
    url = new URL(value, document.baseURI);
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

function link(href, children, title) {
  const safe = safeUrl(href);
  if (!safe) return null;
  const a = el("a");
  a.href = safe;
  if (new URL(safe).origin !== location.origin) {
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
  }
  if (title) a.title = title;
  a.append(...children);
  return a;
}

function findClosing(text, marker, from) {
  let i = from;
  while (i < text.length) {
    const at = text.indexOf(marker, i);
    if (at < 0) return -1;
    if (text[at - 1] !== "\\" && at > from && !/\s/.test(text[at - 1])) return at;
    i = at + 1;
  }
  return -1;
}

function matchBracket(text, start) {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === "[") depth++;
    else if (ch === "]" && --depth === 0) return i;
  }
  return -1;
}

function matchParen(text, start) {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === "(") depth++;
    else if (ch === ")" && --depth === 0) return i;
    else if (ch === "\n") return -1;
  }
  return -1;
}

/** Inline markdown -> an array of nodes. */
export function inline(text, ctx) {
  const out = [];
  let buf = "";
  const flush = () => {
    if (buf) out.push(document.createTextNode(buf));
    buf = "";
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const rest = text.slice(i);
    if (ch === "\\" && i + 1 < text.length && PUNCT.test(text[i + 1])) {
      buf += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === "`") {
      const run = /^`+/.exec(rest)[0];
      const end = text.indexOf(run, i + run.length);
      if (end > 0) {
        flush();
        out.push(el("code", "", text.slice(i + run.length, end).replace(/^ (.+) $/, "$1")));
        i = end + run.length;
        continue;
      }
      buf += run;
      i += run.length;
      continue;
    }
    if (rest.startsWith("***") && !/\s/.test(text[i + 3] || " ")) {
      const end = findClosing(text, "***", i + 3);
      if (end > i + 3) {
        flush();
        const strong = el("strong");
        strong.append(...inline(text.slice(i + 3, end), ctx));
        const em = el("em");
        em.append(strong);
        out.push(em);
        i = end + 3;
        continue;
      }
    }
    const strongMark = rest.startsWith("**") ? "**" : rest.startsWith("__") ? "__" : null;
    if (strongMark || rest.startsWith("~~")) {
      const mark = strongMark || "~~";
      // underscores never open or close inside a word (snake_case, window.__name)
      const intraword = (at) => mark === "__" && WORD.test(text[at] || "");
      let end = findClosing(text, mark, i + 2);
      while (end > 0 && intraword(end + 2)) end = findClosing(text, mark, end + 1);
      if (end > i + 2 && !/\s/.test(text[i + 2]) && !intraword(i - 1)) {
        flush();
        const node = el(mark === "~~" ? "del" : "strong");
        node.append(...inline(text.slice(i + 2, end), ctx));
        out.push(node);
        i = end + 2;
        continue;
      }
    }
    if ((ch === "*" || ch === "_") && text[i + 1] !== ch && text[i + 1] && !/\s/.test(text[i + 1])) {
      const wordBefore = i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1]);
      if (!(ch === "_" && wordBefore)) {
        const end = findClosing(text, ch, i + 1);
        const after = text[end + 1];
        if (end > i + 1 && text[end + 1] !== ch && !(ch === "_" && after && /[\p{L}\p{N}]/u.test(after))) {
          flush();
          const node = el("em");
          node.append(...inline(text.slice(i + 1, end), ctx));
          out.push(node);
          i = end + 1;
          continue;
        }
      }
    }
    if (ch === "[") {
      const cite = CITE.exec(rest);
      if (cite && text[i + cite[0].length] !== "(") {
        const numbers = cite[1].split(/\s*[,;]\s*/).map(Number);
        if (numbers.every((n) => ctx.citation && n >= 1 && n <= ctx.sourceCount)) {
          flush();
          const group = el("span", "cites");
          for (const n of numbers) group.append(ctx.citation(n));
          out.push(group);
          i += cite[0].length;
          continue;
        }
      }
    }
    if (ch === "[" || (ch === "!" && text[i + 1] === "[")) {
      const open = ch === "!" ? i + 1 : i;
      const close = matchBracket(text, open);
      if (close > 0 && text[close + 1] === "(") {
        const end = matchParen(text, close + 1);
        if (end > 0) {
          const label = text.slice(open + 1, close);
          const target = /^\s*<?([^\s>]*)>?(?:\s+["'(](.*)["')])?\s*$/.exec(text.slice(close + 2, end));
          const children = ch === "!" ? [document.createTextNode(label || "image")] : inline(label, { ...ctx, inLink: true });
          const node = target && !ctx.inLink ? link(target[1], children, target[2]) : null;
          flush();
          if (node) {
            if (ch === "!") node.classList.add("image-link");
            out.push(node);
          } else {
            out.push(...children);
          }
          i = end + 1;
          continue;
        }
      }
    }
    if (ch === "<" && !ctx.inLink) {
      const angle = ANGLE_LINK.exec(rest);
      const node = angle ? link(angle[1], [document.createTextNode(angle[1])]) : null;
      if (node) {
        flush();
        out.push(node);
        i += angle[0].length;
        continue;
      }
    }
    if (ch === "h" && !ctx.inLink && (i === 0 || /[\s(]/.test(text[i - 1]))) {
      const auto = AUTOLINK.exec(rest);
      if (auto) {
        const href = auto[1].replace(/[.,;:!?)\]]+$/, "");
        const node = link(href, [document.createTextNode(href)]);
        if (node) {
          flush();
          out.push(node);
          i += href.length;
          continue;
        }
      }
    }
    if (ch === "\n") {
      flush();
      if (/ {2,}$/.test(text.slice(0, i)) || text[i - 1] === "\\") out.push(el("br"));
      else out.push(document.createTextNode("\n"));
      i++;
      continue;
    }
    buf += ch;
    i++;
  }
  flush();
  return out;
}
