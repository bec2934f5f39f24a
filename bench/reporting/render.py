"""Text renderings of the report's frames: LaTeX and Markdown tables, the page's Markdown as HTML, and
the page's sortable tables with the few lines of JavaScript that sort them.

Pure formatting: each function takes an already computed frame (or Markdown text, or cells already
formatted) and returns a string; nothing here selects rows or computes a rate.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from .selection import CLEAN_ROW


# LaTeX and Markdown tables ---------------------------------------------------------------------------

def tex_escape(text: str) -> str:
    return str(text).replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%").replace("#", r"\#")


def protection_latex(table: pd.DataFrame, white: pd.DataFrame, caption: str) -> str:
    targets = list(dict.fromkeys(t for t, _ in table.columns))
    ks = list(dict.fromkeys(k for _, k in table.columns))
    spec = "ll" + "".join("|" + "c" * len(ks) for _ in targets)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{tex_escape(caption)}}}", rf"\begin{{tabular}}{{{spec}}}", r"\hline"]
    lines.append("Source & Method & " + " & ".join(rf"\multicolumn{{{len(ks)}}}{{c}}{{{tex_escape(t)}}}" for t in targets) + r" \\")
    lines.append(" & & " + " & ".join(k for _ in targets for k in ks) + r" \\")
    lines.append(r"\hline")
    for idx in table.index:
        cells = []
        for col in table.columns:
            v = table.loc[idx, col]
            text = "--" if pd.isna(v) else f"{v:.1f}"
            cells.append(text + (r"$^\dagger$" if white.loc[idx, col] else ""))
        lines.append(f"{tex_escape(idx[0])} & {tex_escape(idx[1])} & " + " & ".join(cells) + r" \\")
        if idx == CLEAN_ROW:
            lines.append(r"\hline")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def protection_markdown(table: pd.DataFrame, white: pd.DataFrame, intervals: dict | None = None) -> str:
    """The same table as Markdown (white-box cells marked with *), for READMEs and issue notes;
    ``intervals`` ({(row, column): Interval}) adds ' [low, high]' to the cells that have one."""
    intervals = intervals or {}
    targets = list(dict.fromkeys(t for t, _ in table.columns))
    ks = list(dict.fromkeys(k for _, k in table.columns))
    head = ["source", "method"] + [f"{t} {k}" for t in targets for k in ks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx in table.index:
        cells = []
        for col in table.columns:
            v = table.loc[idx, col]
            text = "-" if pd.isna(v) else f"{v:.1f}"
            iv = intervals.get((idx, col))
            if iv is not None and not pd.isna(v):
                text += f" [{iv.low:.1f}, {iv.high:.1f}]"
            cells.append(text + ("*" if white.loc[idx, col] else ""))
        lines.append("| " + " | ".join([str(idx[0]), str(idx[1])] + cells) + " |")
    return "\n".join(lines) + "\n"


def frame_latex(df: pd.DataFrame, caption: str) -> str:
    cols = [df.index.name or ""] + list(df.columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{tex_escape(caption)}}}",
             rf"\begin{{tabular}}{{l{'c' * len(df.columns)}}}", r"\hline",
             " & ".join(tex_escape(c) for c in cols) + r" \\", r"\hline"]
    for idx, row in df.iterrows():
        vals = [("--" if pd.isna(v) else f"{v:.3g}") if isinstance(v, (float, np.floating)) else tex_escape(v) for v in row]
        lines.append(" & ".join([tex_escape(idx)] + vals) + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def cell_text(v) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(v).replace("|", "/").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """A Markdown table of ``df``'s columns (the index is not shown: reset it first to show it)."""
    cols = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell_text(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


# inline Markdown and plain tables as HTML ----------------------------------------------------------

_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)"), r'<img src="\2" alt="\1">'),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
]


def _inline(text: str) -> str:
    out = html.escape(text, quote=True)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def _table_html(lines: list[str]) -> str:
    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    head, body = cells(lines[0]), [cells(x) for x in lines[2:]]
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(out + ["</tbody>", "</table>"])


# sortable tables -------------------------------------------------------------------------------------

# The page's only script: plain JavaScript, inline (no CDN: the page works offline and from a zip). Each
# header of a table.sortable holds a button; a click sorts the body by that column's data-sort keys
# (numbers as numbers, text as text, empty cells last in either direction; ties keep their order) and
# says so in the header's aria-sort, which the CSS also shows as an arrow. ``order`` is the whole sorting
# rule and is exported where ``module`` exists, so tests can run it under node without a DOM.
SORT_SCRIPT = r"""(function () {
  "use strict";
  function order(keys, ascending) {
    var idx = keys.map(function (_, i) { return i; });
    idx.sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x === "" || y === "") { return (x === "") - (y === "") || a - b; }
      var nx = Number(x), ny = Number(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return (ascending ? c : -c) || a - b;
    });
    return idx;
  }
  function sortBy(button) {
    var th = button.closest("th"), table = th.closest("table"), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") === "descending" ||
      (th.getAttribute("aria-sort") !== "ascending" && th.dataset.first === "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    var keys = rows.map(function (r) { var c = r.cells[col]; return c.dataset.sort !== undefined ? c.dataset.sort : c.textContent.trim(); });
    order(keys, ascending).forEach(function (i) { body.appendChild(rows[i]); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  if (typeof document !== "undefined") {
    document.querySelectorAll("table.sortable th button").forEach(function (b) {
      b.addEventListener("click", function () { sortBy(b); });
    });
  }
  if (typeof module !== "undefined") { module.exports = { order: order }; }
})();"""


def sortable_table(head: list[tuple[str, str]], rows: list[list[tuple[str, object, bool]]], caption: str,
                   sorted_by: int | None = None, descending: bool = True) -> str:
    """An HTML table whose columns sort on click (SORT_SCRIPT). ``head``: (label, the direction a first
    click sorts: "ascending" or "descending"); ``rows``: per cell (text, sort key: a number, text, or None
    for an empty cell, best: bold and said so to screen readers); ``sorted_by``: the column the rows come
    sorted by (its header carries aria-sort)."""
    ths = []
    for i, (label, first) in enumerate(head):
        sort = f' aria-sort="{"descending" if descending else "ascending"}"' if i == sorted_by else ""
        ths.append(f'<th scope="col" data-first="{first}"{sort}><button type="button">{html.escape(label)}</button></th>')
    body = []
    for cells in rows:
        tds = []
        for text, key, best in cells:
            key = "" if key is None or (isinstance(key, float) and np.isnan(key)) else key
            key = f"{key:.6g}" if isinstance(key, (float, np.floating)) else str(key)
            shown = html.escape(text)
            if best:
                shown = f'<strong>{shown}</strong><span class="sr-only"> (best)</span>'
            marked = ' class="best"' if best else ""
            tds.append(f'<td data-sort="{html.escape(key, quote=True)}"{marked}>{shown}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return "\n".join([f'<table class="sortable">', f"<caption>{_inline(caption)}</caption>",
                      "<thead><tr>" + "".join(ths) + "</tr></thead>", "<tbody>", *body, "</tbody>", "</table>"])


# Markdown -> HTML ------------------------------------------------------------------------------------

# A Markdown block between '<!-- html:NAME -->' and '<!-- /html -->' is shown as the HTML ``raw[NAME]``
# instead (a Markdown viewer hides the comments and shows the Markdown): the leaderboards are plain
# tables in index.md and sortable ones, beside their figure, in index.html.
_RAW_START, _RAW_END = re.compile(r"^<!-- html:(\S+) -->$"), "<!-- /html -->"

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1500px;margin:1.5em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1em}th,td{border:1px solid #ccc;"
         "padding:2px 6px;text-align:left}th{background:#f3f3f3}figure{margin:1em 0}figure img{max-width:100%;"
         "border:1px solid #eee}figcaption{font-size:12px;color:#555}code{font-size:12px}"
         "caption{text-align:left;font-size:12px;color:#555;padding:2px 0}"
         ".board{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.board>table{flex:0 0 auto}"
         ".board>figure{flex:1 1 420px;margin:0}td.best{background:#e6f4ea}"
         "table.sortable th{padding:0}table.sortable th button{font:inherit;font-weight:bold;background:none;"
         "border:0;padding:2px 6px;width:100%;text-align:left;cursor:pointer}"
         "table.sortable th[aria-sort=ascending] button::after{content:' \\25B2'}"
         "table.sortable th[aria-sort=descending] button::after{content:' \\25BC'}"
         ".sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}")


def markdown_to_html(md: str, title: str, raw: dict[str, str] | None = None, script: str | None = None) -> str:
    """The subset of Markdown this page uses: # headings, | tables |, - lists, paragraphs, figures
    (a line that is only an image, followed by an italic caption line), and blocks shown as ``raw`` HTML
    (see _RAW_START); ``script`` goes inline at the end of the body."""
    raw = raw or {}
    blocks, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if m := _RAW_START.match(line.strip()):
            j = i + 1
            while j < len(lines) and lines[j].strip() != _RAW_END:
                j += 1
            if m.group(1) in raw:
                blocks.append(raw[m.group(1)])
                i = j + 1
            else:  # no HTML for it: the Markdown inside is shown as it is
                i += 1
        elif line.strip() == _RAW_END or not line.strip():
            i += 1
        elif m := re.match(r"^(#{1,4}) (.*)$", line):
            level = len(m.group(1))
            blocks.append(f'<h{level} id="{heading_anchor(m.group(2))}">{_inline(m.group(2))}</h{level}>')
            i += 1
        elif line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            blocks.append(_table_html(lines[i:j]))
            i = j
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            blocks.append("<ul>\n" + "\n".join(items) + "\n</ul>")
        elif re.match(r"^!\[[^\]]*\]\([^)]+\)$", line.strip()):
            caption = lines[i + 1].strip() if i + 1 < len(lines) else ""
            has_caption = caption.startswith("*") and caption.endswith("*")
            text = _inline(caption.strip("*")) if has_caption else ""
            blocks.append(f"<figure>{_inline(line.strip())}<figcaption>{text}</figcaption></figure>")
            i += 2 if has_caption else 1
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("|", "- ", "#")) \
                    and not _RAW_START.match(lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    tail = f"<script>\n{script}\n</script>\n" if script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(blocks) + "\n" + tail + "</body>\n</html>\n")


def heading_anchor(text: str) -> str:
    """The id markdown_to_html gives a heading (for in-page links)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
