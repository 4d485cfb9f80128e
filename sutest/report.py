"""Render a sutest matrix as text, JSON and an SVG picture (stdlib only).

Runs as: anyone. Trusts: the result it is given. Hot path: no.
"""

from __future__ import annotations

from html import escape

from glexec_py.sutest.matrix import ACTIONS, Cell, MatrixResult
from glexec_py.sutest.shapes import DESCRIPTIONS, SHAPES

SYMBOL = {"pass": "caught", "limit": "escapes (limit)", "FAIL": "FAIL", "n/a": "-"}
COLOUR = {"pass": "#2e7d32", "limit": "#f9a825", "FAIL": "#c62828", "n/a": "#bdbdbd"}


def _groups(result: MatrixResult) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for c in result.cells:
        key = (c.system, c.launcher)
        if key not in seen:
            seen.append(key)
    return seen


def _lookup(result: MatrixResult) -> dict[tuple[str, str, str, str], Cell]:
    return {(c.system, c.launcher, c.shape, c.action): c for c in result.cells}


def _shapes(result: MatrixResult) -> list[str]:
    present = {c.shape for c in result.cells}
    return [s for s in SHAPES if s in present]


def render_text(result: MatrixResult) -> str:
    cells = _lookup(result)
    lines = []
    for system, launcher in _groups(result):
        lines.append(f"## {system}, launcher {launcher}")
        lines.append("")
        lines.append("| shape | " + " | ".join(ACTIONS) + " |")
        lines.append("|---|" + "---|" * len(ACTIONS))
        for shape in _shapes(result):
            row = []
            for action in ACTIONS:
                c = cells.get((system, launcher, shape, action))
                if c is None:
                    row.append("")
                    continue
                text = SYMBOL[c.verdict]
                if c.detail and c.verdict != "n/a":
                    text += f" ({c.detail})"
                row.append(text)
            lines.append(f"| {DESCRIPTIONS[shape]} | " + " | ".join(row) + " |")
        lines.append("")
    failures = result.failures()
    lines.append(f"{len(result.cells)} cells, {len(failures)} unexpected"
                 + ("" if not failures else ": " + ", ".join(
                     f"{c.system}/{c.launcher}/{c.shape}/{c.action}" for c in failures)))
    return "\n".join(lines) + "\n"


def render_json(result: MatrixResult) -> str:
    return result.to_json()


def render_svg(result: MatrixResult) -> str:
    """One block per (system, launcher): rows = shapes, columns = actions, colour = verdict."""
    cells = _lookup(result)
    groups = _groups(result)
    shapes = _shapes(result)
    cw, ch, label_w, head_h, gap = 74, 22, 250, 44, 18
    block_w = label_w + cw * len(ACTIONS)
    block_h = head_h + ch * len(shapes)
    width = block_w + 20
    height = 20 + len(groups) * (block_h + gap) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    y = 10
    for system, launcher in groups:
        out.append(f'<text x="10" y="{y + 16}" font-weight="bold">'
                   f'{escape(system)} / {escape(launcher)}</text>')
        for i, action in enumerate(ACTIONS):
            out.append(f'<text x="{10 + label_w + i * cw + cw / 2}" y="{y + head_h - 6}" '
                       f'text-anchor="middle">{action}</text>')
        for j, shape in enumerate(shapes):
            row_y = y + head_h + j * ch
            out.append(f'<text x="10" y="{row_y + 15}">{escape(DESCRIPTIONS[shape])}</text>')
            for i, action in enumerate(ACTIONS):
                c = cells.get((system, launcher, shape, action))
                verdict = c.verdict if c else "n/a"
                title = escape(f"{shape}/{action}: {verdict} {c.detail if c else ''}")
                out.append(f'<rect x="{10 + label_w + i * cw}" y="{row_y}" width="{cw - 2}" '
                           f'height="{ch - 2}" fill="{COLOUR[verdict]}"><title>{title}</title>'
                           '</rect>')
        y += block_h + gap
    legend_x = 10
    for verdict in ("pass", "limit", "FAIL", "n/a"):
        out.append(f'<rect x="{legend_x}" y="{y}" width="14" height="14" '
                   f'fill="{COLOUR[verdict]}"/>')
        out.append(f'<text x="{legend_x + 18}" y="{y + 12}">{SYMBOL[verdict]}</text>')
        legend_x += 150
    out.append("</svg>")
    return "\n".join(out) + "\n"
