"""Rendering the blocks of an OAS-Bench report as Markdown and as self-contained HTML.

What is rendered: a report is a list of blocks, ``("h", level, text)``, ``("p", text)``,
``("list", items)``, ``("table", headers, rows)``, ``("figure", file, caption)`` and
``("code", title, text, path)``; :func:`markdown` and :func:`html_document` render the same
list, so the two files can never disagree. Shared by the interconnect-spec report
(:mod:`oassim.experiments.report_html`) and the proposal report
(:mod:`oassim.experiments.proposal_report`).

Why the escaping: text taken from spec and proposal files (names, descriptions, notes) is
escaped in both renderings, HTML entities in HTML, and in Markdown HTML entities for ``& < >``
plus backslash escapes of the link, image, emphasis and code characters, so a file cannot put
markup, scripts or links into a report.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["Block", "markdown", "html_document", "write_csv"]

Block = tuple  # ("h", level, text) | ("p", text) | ("list", items) | ("table", headers, rows)
# | ("figure", file, caption) | ("code", title, text, path)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Flat rows as CSV (nested values as JSON), columns in first-seen order."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in rows)


# -- renderings -------------------------------------------------------------------------------


_MD_PUNCT = re.compile(r"([\\`*_\[\]])")  # code spans, emphasis, links and images
_MD_BLOCK = re.compile(r"^(\s*)([#=+-]|\d+[.)](?=\s|$))")  # would open a heading, rule, list at a line start


def _md_inline(text: Any) -> str:
    """``text`` as literal Markdown inside a line: ``& < >`` as HTML entities (so no raw HTML,
    e.g. a ``<script>`` in a spec's notes, reaches a renderer), the link, image, emphasis and
    code characters backslash-escaped, line breaks folded."""
    return _MD_PUNCT.sub(r"\\\1", html.escape(str(text), quote=False).replace("\r", " ").replace("\n", " "))


def _md_text(text: Any) -> str:
    """A heading, paragraph or list item as literal Markdown: :func:`_md_inline`, and a block
    marker at its start escaped."""
    return _MD_BLOCK.sub(r"\1\\\2", _md_inline(text))


def _md_cell(text: Any) -> str:
    return _md_inline(text).replace("|", "\\|")


def markdown(blocks: list[Block]) -> str:
    """The Markdown rendering of ``blocks`` (spec text escaped: see the module docstring)."""
    out: list[str] = []
    for i, blk in enumerate(blocks):
        kind = blk[0]
        if kind == "h":
            out.append(f"{'#' * blk[1]} {_md_text(blk[2])}")
        elif kind == "p":
            out.append(_md_text(blk[1]))
        elif kind == "list":
            out.append("\n".join(f"- {_md_text(i)}" for i in blk[1]))
        elif kind == "table":
            head, rows = blk[1], blk[2]
            lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("\n".join(lines))
        elif kind == "figure":
            out.append(f"![{_md_inline(blk[2])}]({blk[1]})")  # file names are ours (slugs): no escaping
        elif kind == "code":  # consecutive inputs form one list of links
            item = f"- [{_md_inline(blk[1])}]({blk[3]})"
            if i and blocks[i - 1][0] == "code":
                out[-1] += "\n" + item
            else:
                out.append(item)
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.85em}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f2f2f2}img{max-width:100%}pre{background:#f7f7f7;
padding:0.6em;overflow:auto;font-size:0.8em}details{margin:0.3em 0}figure{margin:1em 0}"""


def html_document(blocks: list[Block], pngs: dict[str, bytes], title: str) -> str:
    """The self-contained HTML rendering of ``blocks``; ``pngs`` maps figure files to PNG bytes."""
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{e(title)}</title><style>{_CSS}</style></head><body>"]
    for blk in blocks:
        kind = blk[0]
        if kind == "h":
            out.append(f"<h{blk[1]}>{e(blk[2])}</h{blk[1]}>")
        elif kind == "p":
            out.append(f"<p>{e(blk[1])}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in blk[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in blk[1])
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in blk[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            data = base64.b64encode(pngs[blk[1]]).decode("ascii")
            out.append(f"<figure><img alt=\"{e(blk[2])}\" src=\"data:image/png;base64,{data}\">"
                       f"<figcaption>{e(blk[2])} ({e(blk[1])})</figcaption></figure>")
        elif kind == "code":
            out.append(f"<details><summary>{e(blk[3])}</summary><pre>{e(blk[2])}</pre></details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
