// A small, sanitising markdown renderer for untrusted text (model output).
//
// It never parses HTML: every piece of text becomes a Text node, every element is
// created with createElement, and raw "<tags>" in the input stay visible as text.
// Links keep only http(s), mailto and relative targets; images are shown as links
// (loading them would fetch from wherever the text points). Citation marks such as
// [2] or [1, 3] become buttons when a source with that number exists.

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
const CITE = /^\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]/;
const AUTOLINK = /^(https?:\/\/[^\s<>"'`]+)/;
const ANGLE_LINK = /^<(https?:\/\/[^\s<>"'`]+)>/;
const PUNCT = /[!-/:-@[-`{-~]/;
const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const WORD = /[\p{L}\p{N}]/u;

function el(tag, className, text) {
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
function inline(text, ctx) {
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

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  const cells = [];
  let cell = "";
  for (let i = 0; i < row.length; i++) {
    if (row[i] === "\\" && row[i + 1] === "|") {
      cell += "|";
      i++;
    } else if (row[i] === "|") {
      cells.push(cell.trim());
      cell = "";
    } else cell += row[i];
  }
  cells.push(cell.trim());
  return cells;
}

function isBlockStart(line, next) {
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    QUOTE.test(line) ||
    ITEM.test(line) ||
    (line.includes("|") && next !== undefined && TABLE_SEP.test(next) && next.includes("-"))
  );
}

function table(lines, ctx) {
  const head = splitRow(lines[0]);
  const aligns = splitRow(lines[1]).map((c) =>
    c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : "",
  );
  const wrap = el("div", "table-wrap");
  const tableEl = el("table");
  const thead = el("thead");
  const tr = el("tr");
  head.forEach((cell, col) => {
    const th = el("th", aligns[col] ? `align-${aligns[col]}` : "");
    th.append(...inline(cell, ctx));
    tr.append(th);
  });
  thead.append(tr);
  const tbody = el("tbody");
  for (const line of lines.slice(2)) {
    const row = el("tr");
    const cells = splitRow(line);
    for (let col = 0; col < head.length; col++) {
      const td = el("td", aligns[col] ? `align-${aligns[col]}` : "");
      td.append(...inline(cells[col] || "", ctx));
      row.append(td);
    }
    tbody.append(row);
  }
  tableEl.append(thead, tbody);
  wrap.append(tableEl);
  return wrap;
}

function list(lines, start, ctx) {
  const first = ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const node = el(ordered ? "ol" : "ul");
  if (ordered) {
    const startAt = parseInt(first[2], 10);
    if (startAt !== 1) node.start = startAt;
  }
  let i = start;
  let item = null;
  let body = [];
  let content = 0; // the item's content column: continuation lines are cut there
  let loose = false;
  const close = () => {
    if (!item) return;
    while (body.length && !body[body.length - 1].trim()) body.pop();
    item.append(...blocks(body, ctx, !loose));
    node.append(item);
  };
  while (i < lines.length) {
    const line = lines[i];
    const m = ITEM.exec(line);
    if (m && m[1].length <= indent + 1 && /\d/.test(m[2]) === ordered && m[1].length >= indent) {
      close();
      item = el("li");
      body = [m[3]];
      content = m[0].length - m[3].length;
      i++;
      continue;
    }
    if (!line.trim()) {
      const next = lines[i + 1];
      if (next === undefined || (!/^\s/.test(next) && !ITEM.test(next))) break;
      if (ITEM.test(next) && ITEM.exec(next)[1].length === indent) loose = true;
      body.push("");
      i++;
      continue;
    }
    if (m && m[1].length < indent) break;
    if (!/^\s/.test(line) && !m && isBlockStart(line, lines[i + 1])) break;
    if (!/^\s/.test(line) && !m && body.length && !body[body.length - 1].trim()) break;
    body.push(line.replace(new RegExp(`^\\s{0,${content}}`), ""));
    i++;
  }
  close();
  return [node, i];
}

/** Block markdown -> an array of nodes. ``tight`` (a tight list's item) renders text without <p>. */
function blocks(lines, ctx, tight = false) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const code = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i++]);
      i++;
      const pre = el("pre");
      const codeEl = el("code", "", code.join("\n"));
      if (fence[2]) codeEl.dataset.lang = fence[2];
      pre.append(codeEl);
      out.push(pre);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      // Answers sit under the page's own headings: shift levels down by two.
      const h = el(`h${Math.min(heading[1].length + 2, 6)}`);
      h.append(...inline(heading[2], ctx));
      out.push(h);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push(el("hr"));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && lines[i].trim() && QUOTE.test(lines[i])) {
        quoted.push(QUOTE.exec(lines[i])[1]);
        i++;
      }
      const bq = el("blockquote");
      bq.append(...blocks(quoted, ctx));
      out.push(bq);
      continue;
    }
    if (ITEM.test(line)) {
      const [node, next] = list(lines, i, ctx);
      out.push(node);
      i = next;
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      const rows = [line, lines[i + 1]];
      i += 2;
      while (i < lines.length && lines[i].trim() && lines[i].includes("|")) rows.push(lines[i++]);
      out.push(table(rows, ctx));
      continue;
    }
    const para = [line];
    i++;
    while (i < lines.length && lines[i].trim() && !isBlockStart(lines[i], lines[i + 1])) para.push(lines[i++]);
    const text = para.map((l) => l.replace(/^\s+/, "")).join("\n");
    if (tight) {
      out.push(...inline(text, ctx)); // a tight list item's text: no <p> (CommonMark)
    } else {
      const p = el("p");
      p.append(...inline(text, ctx));
      out.push(p);
    }
  }
  return out;
}

/**
 * Render untrusted markdown into a DocumentFragment.
 * options.citation(n) -> Node builds a citation mark; options.sourceCount bounds valid marks.
 */
export function renderMarkdown(text, options = {}) {
  const ctx = { citation: options.citation || null, sourceCount: options.sourceCount || 0, inLink: false };
  const fragment = document.createDocumentFragment();
  const lines = String(text || "").replace(/\r\n?/g, "\n").replace(/\t/g, "    ").split("\n");
  fragment.append(...blocks(lines, ctx));
  return fragment;
}
