// A small, sanitising markdown renderer for untrusted text (model output).
//
// It never parses HTML: every piece of text becomes a Text node, every element is
// created with createElement, and raw "<tags>" in the input stay visible as text.
// Links keep only http(s), mailto and relative targets; images are shown as links
// (loading them would fetch from wherever the text points). Citation marks such as
// [2] or [1, 3] become buttons when a source with that number exists.
//
// Blocks (fences, headings, rules, quotes, lists, tables, paragraphs) are read here;
// the text inside them goes through markdown_inline.js.

import { el, inline } from "./markdown_inline.js";

export { safeUrl } from "./markdown_inline.js";

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

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
