"""Text renderings of the report's frames: LaTeX and Markdown tables, and the page's Markdown as HTML.

Pure formatting: each function takes an already computed frame (or Markdown text) and returns a string;
nothing here selects rows or computes a rate.
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



# Markdown -> HTML ------------------------------------------------------------------------------------

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


def markdown_to_html(md: str, title: str) -> str:
    """The subset of Markdown this page uses: # headings, | tables |, - lists, paragraphs, figures
    (a line that is only an image, followed by an italic caption line)."""
    blocks, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif m := re.match(r"^(#{1,4}) (.*)$", line):
            level = len(m.group(1))
            anchor = re.sub(r"[^a-z0-9]+", "-", m.group(2).lower()).strip("-")
            blocks.append(f'<h{level} id="{anchor}">{_inline(m.group(2))}</h{level}>')
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
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("|", "- ", "#")):
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1em}th,td{border:1px solid #ccc;"
             "padding:2px 6px;text-align:left}th{background:#f3f3f3}figure{margin:1em 0}figure img{max-width:100%;"
             "border:1px solid #eee}figcaption{font-size:12px;color:#555}code{font-size:12px}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
            + "\n".join(blocks) + "\n</body>\n</html>\n")
