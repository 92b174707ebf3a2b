"""Render the report model (kit/publish/report.py) as one self-contained HTML page.

No network asset of any kind: inline CSS, inline SVG charts, no script, and a
Content-Security-Policy that forbids loading anything. Every string from the bundle or the
reference (task, model and metric names) is untrusted and goes through ``html.escape``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from kit.publish.baseline import zero_shot_text

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--pass:#1a7f37;
--fail:#cf222e;--none:#9a6700;--band:#dafbe1}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;
border-bottom:1px solid var(--line);padding-bottom:4px}
.sub{color:var(--muted);margin:0 0 16px;overflow-wrap:anywhere}
.verdict{font-size:18px;font-weight:600;padding:12px 16px;border-radius:8px;
border:1px solid var(--line);background:var(--bg)}
.verdict.pass{border-color:var(--pass);color:var(--pass);background:#f0fff4}
.verdict.fail{border-color:var(--fail);color:var(--fail);background:#fff5f5}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:12px;
margin-top:16px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;background:var(--bg);
overflow-wrap:anywhere}
.card h3{margin:0 0 4px;font-size:13px;text-transform:uppercase;letter-spacing:.04em;
color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:var(--bg);font-weight:600}
th:last-child{white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;white-space:nowrap;padding:1px 8px;border-radius:10px;font-size:12px;
font-weight:700;color:#fff}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}
.badge.none{background:var(--none)}.badge.tie{background:var(--muted)}
.scope{margin:4px 0 8px;padding:8px 12px;border-left:4px solid var(--none);background:#fff8c5}
.note{color:var(--muted);font-size:13px}
.chart{margin:8px 0 16px}svg text{font:12px system-ui,sans-serif;fill:#1f2328}
footer{margin-top:40px;color:var(--muted);font-size:12px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
_BADGE = {True: ("pass", "pass"), False: ("fail", "FAIL"), None: ("none", "no reference")}
_OUTCOME = {"win": ("pass", "win"), "tie": ("tie", "tie"), "loss": ("fail", "loss")}
_COLOUR = {"pass": "#1a7f37", "fail": "#cf222e", "tie": "#59636e", "none": "#9a6700"}
_TRAINED_WIN = "win (not zero-shot)"  # amber, never a clean (green) win
_ZERO_SHOT = {True: "yes", False: "no: trained on it", None: "unknown"}


def e(value: Any) -> str:
    """Escape any value for HTML text and attribute context."""
    return escape(str(value), quote=True)


def num(x: float | None, fmt: str = ".6f") -> str:
    return "–" if x is None else format(x, fmt)


def badge(ok: bool | None) -> str:
    cls, text = _BADGE[ok]
    return f'<span class="badge {cls}">{text}</span>'


def result_badge(row: dict[str, Any], mode: str) -> str:
    """pass / FAIL (reproduction) or win / tie / loss (baseline), a win not zero-shot said so."""
    if mode != "baseline" or row.get("result") is None:
        return badge(row["ok"])
    cls, text = _OUTCOME[row["result"]]
    if row["result"] == "win" and row.get("zero_shot") is False:
        cls, text = "none", _TRAINED_WIN
    return f'<span class="badge {cls}">{text}</span>'


def render_html(model: dict[str, Any]) -> str:
    """The whole page as a string."""
    b = model["bundle"]
    against = model.get("against")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>repro-kit report: {e(model['title'])}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>repro-kit report</h1>",
        f'<p class="sub"><b>{e(b["model"])}</b> @ <code>{e(b["revision_text"])}</code> · '
        f"{b['n_tasks']} task(s) · bundle <code>{e(b['path'])}</code>"
        + (f" · against {e(against['label'])}" if against else "")
        + "</p>",
        _verdict(model),
        _cards(model),
        _means_section(model),
        _chart_section(model),
        _tasks_section(model),
        _published_section(model),
        _environment_section(model),
        _verify_section(model),
        f"<footer>Made by {e(model['generator'])}. Self-contained: no scripts, no fonts, "
        "images or styles from the network.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def verdict_text(model: dict[str, Any]) -> tuple[str, str]:
    """(css class, one-line verdict) shared by the HTML and Markdown renderers."""
    s = model["summary"]
    part = model.get("partial")
    if part is not None:
        left = ", ".join(f"{t['name']} {t['status']}" for t in part["tasks"]) or "no task"
        _, text = verdict_text({**model, "partial": None})
        return "fail", f"PARTIAL bundle (run {part['status']}; {left}); {text}"
    if model.get("against") is None:
        return "none", f"{s['n_tasks']} task(s); no reference given (use --against)"
    if model.get("mode") == "baseline":
        b = model["baseline"]
        return ("pass" if b["beats"] else "fail"), b["text"]
    tol, mtol = model["tolerance"], model["mean_tolerance"]
    text = (
        f"{s['n_pass']} of {s['n_compared']} task(s) pass, {s['n_fail']} fail at "
        f"±{tol:g}; means at ±{mtol:g}: "
        + (f"{len(s['means_failed'])} fail" if s["means_failed"] else "all pass")
    )
    if s["no_reference"]:
        text += f"; no reference for {len(s['no_reference'])} task(s)"
    if s.get("only_against"):
        text += f"; {len(s['only_against'])} task(s) only in the reference"
    return ("pass" if s["ok"] else "fail"), text


def _verdict(model: dict[str, Any]) -> str:
    cls, text = verdict_text(model)
    return f'<div class="verdict {cls}">{e(text)}</div>'


def _cards(model: dict[str, Any]) -> str:
    sig = model["signer"]
    against = model.get("against")
    sig_html = e(sig["text"])
    if sig["status"] == "verified":
        sig_html = (
            f"<b>{e(', '.join(sig['principals']) or 'given public key')}</b><br>"
            f"<code>{e(sig['fingerprint'])}</code><br>{e(sig.get('key_type') or '')}"
        )
    ref_html = "none given"
    if against:
        ref_html = f"{e(against['label'])}<br><span class='note'>{e(against['kind'])}: " + (
            f"<code>{e(against['source'])}</code></span>"
        )
    tol_html = (
        f"per task ±{model['tolerance']:g}<br>means ±{model['mean_tolerance']:g}"
        "<br><span class='note'>absolute, on the 0–1 scale</span>"
    )
    role = "Baseline" if model.get("mode") == "baseline" else "Reference"
    zs = model.get("zero_shot")
    zs_html = ""
    if zs:
        zs_html = (
            f'<div class="card"><h3>Zero-shot</h3>{e(zero_shot_text(zs))}'
            f"<br><span class='note'>{e(zs['note'])}</span></div>"
        )
    return (
        '<div class="cards">'
        f'<div class="card"><h3>Signer ({e(sig["status"].replace("_", " "))})</h3>'
        f"{sig_html}</div>"
        f'<div class="card"><h3>{role}</h3>{ref_html}</div>'
        f'<div class="card"><h3>Tolerance</h3>{tol_html}</div>'
        f"{zs_html}</div>"
    )


def _means_section(model: dict[str, Any]) -> str:
    rows = []
    for m in model["means"]:
        rows.append(
            f"<tr><td>{e(m['label'])}</td><td class='num'>{num(m['score'])}</td>"
            f"<td class='num'>{num(m['score'] * 100, '.2f')}</td>"
            f"<td class='num'>{num(m['reference'])}</td>"
            f"<td class='num'>{num(m['delta'], '+.6f')}</td>"
            f"<td>{result_badge(m, model.get('mode', ''))}</td></tr>"
        )
    return (
        "<h2>Benchmark means</h2>"
        f'<p class="scope">Scope: {e(model["scope"]["text"])}.</p>'
        "<table><thead><tr><th>Mean (what it averages)</th><th class='num'>score</th>"
        "<th class='num'>×100</th><th class='num'>reference, same tasks</th>"
        "<th class='num'>delta</th><th>result</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        "<p class='note'>Computed as MTEB's leaderboard does: a task's score is the mean of its "
        "main score over its splits and subsets; the mean over task types is the mean of the "
        "per-type means.</p>"
    )


def _tasks_section(model: dict[str, Any]) -> str:
    rows = []
    for r in model["tasks"]:
        rows.append(
            f"<tr><td>{e(r['task'])}</td><td>{e(r['type'])}</td><td>{e(r['main_metric'])}</td>"
            f"<td>{e(', '.join(r['splits']))}</td><td class='num'>{num(r['score'])}</td>"
            f"<td class='num'>{num(r['reference'])}</td>"
            f"<td class='num'>{num(r['delta'], '+.6f')}</td>"
            f"<td>{result_badge(r, model.get('mode', ''))}</td>"
            f"<td>{_ZERO_SHOT[r.get('zero_shot')]}</td></tr>"
        )
    return (
        f"<h2>Tasks ({len(model['tasks'])})</h2>"
        "<table><thead><tr><th>task</th><th>type</th><th>main metric</th><th>splits</th>"
        "<th class='num'>score</th><th class='num'>reference</th><th class='num'>delta</th>"
        "<th>result</th><th>zero-shot</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _chart_section(model: dict[str, Any]) -> str:
    if model.get("against") is None:
        return ""
    base = model.get("mode") == "baseline"
    tasks = [(r["task"], r["delta"], _mark(r, base)) for r in model["tasks"]]
    types = [(f"{t['type']} ({t['n_tasks']})", t["delta"], _mark(t, base)) for t in model["types"]]
    return (
        "<h2>Deltas: bundle − "
        + ("baseline" if base else "reference")
        + "</h2>"
        + svg_chart("Delta per task", tasks, model["tolerance"])
        + svg_chart("Delta per task type (mean over its tasks)", types, model["mean_tolerance"])
    )


def _mark(row: dict[str, Any], baseline: bool) -> str | None:
    """What a bar says: pass / FAIL, or win / tie / loss against a baseline (None: no delta)."""
    if row.get("delta") is None:
        return None
    if baseline:
        trained = row.get("result") == "win" and row.get("zero_shot") is False
        return _TRAINED_WIN if trained else str(row.get("result"))
    return "pass" if row["ok"] else "FAIL"


def svg_chart(title: str, items: list[tuple[str, float | None, str | None]], tol: float) -> str:
    """A horizontal bar chart diverging around zero, with the ±tolerance band shaded; each
    bar is marked pass / FAIL or win / tie / loss (green, red; a tie grey)."""
    label_w, plot_w, value_w, row_h, top = 260, 560, 230, 24, 40
    width = label_w + plot_w + value_w
    height = top + row_h * max(1, len(items)) + 36
    deltas = [abs(d) for _, d, _ in items if d is not None]
    span = max([*deltas, 2 * tol, 1e-9]) * 1.1
    cx = label_w + plot_w / 2

    def x(v: float) -> float:
        return cx + v / span * (plot_w / 2)

    bottom = top + row_h * max(1, len(items))
    out = [
        f'<div class="chart"><svg role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" aria-label="{e(title)}">',
        f"<title>{e(title)}</title>",
        f'<text x="0" y="16" font-weight="600">{e(title)}</text>',
        f'<rect x="{x(-tol):.1f}" y="{top - 6}" width="{x(tol) - x(-tol):.1f}" '
        f'height="{bottom - top + 12}" fill="#dafbe1"/>',
    ]
    for v in (-tol, tol):
        out.append(
            f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{top - 6}" y2="{bottom + 6}" '
            'stroke="#1a7f37" stroke-dasharray="4 3"/>'
        )
    for i, (label, delta, mark) in enumerate(items):
        y = top + i * row_h
        shown = label if len(label) <= 38 else label[:36] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{e(shown)}'
            f"<title>{e(label)}</title></text>"
        )
        if delta is None:
            out.append(f'<text x="{cx + 6:.1f}" y="{y + 15}" fill="#9a6700">no reference</text>')
            continue
        x0, x1 = sorted((x(0), x(delta)))
        kind = {"pass": "pass", "win": "pass", "tie": "tie", _TRAINED_WIN: "none"}
        color = _COLOUR[kind.get(str(mark), "fail")]
        out.append(
            f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 8}" '
            f'fill="{color}"><title>{e(label)}: {delta:+.6f}</title></rect>'
        )
        out.append(
            f'<text x="{label_w + plot_w + 8}" y="{y + 15}" fill="{color}">'
            f"{delta:+.6f} {mark}</text>"
        )
    out.append(
        f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top - 10}" y2="{bottom + 6}" stroke="#1f2328"/>'
    )
    ticks = [-span / 1.1, 0.0, span / 1.1]
    if x(tol) - x(0) >= 48:  # label the band's edges only where they do not collide with 0
        ticks += [-tol, tol]
    for v in ticks:
        anchor = "middle" if v == 0 else ("end" if v < 0 else "start")
        out.append(
            f'<text x="{x(v):.1f}" y="{bottom + 22}" text-anchor="{anchor}" fill="#59636e">'
            f"{v:+.4f}</text>"
        )
    out.append(
        f'<text x="{x(tol) + 4:.1f}" y="{top - 12}" fill="#1a7f37">±{tol:g} tolerance</text>'
    )
    out.append("</svg></div>")
    return "".join(out)


def _published_section(model: dict[str, Any]) -> str:
    pubs = model.get("published_means") or []
    if not pubs:
        return ""
    notes = sorted({p["note"] for p in pubs if p.get("note")})
    rows = "".join(
        f"<tr><td><code>{e(p['label'])}</code></td><td>{e(p['gloss'])}</td>"
        f"<td class='num'>{num(p['value'])}</td><td class='num'>{num(p['value'] * 100, '.2f')}"
        "</td></tr>"
        for p in pubs
    )
    return (
        "<h2>Means published in the reference (labels as the file names them)</h2>"
        "<p class='note'>These average the benchmark's own task sets, not this bundle's: "
        "compare them only with a bundle that ran the same tasks.</p>"
        "<table><thead><tr><th>label in the reference</th><th>what it averages</th>"
        "<th class='num'>value</th><th class='num'>×100</th></tr></thead><tbody>"
        + rows
        + "</tbody></table>"
        + "".join(f"<p class='note'>Reference note: {e(n)}</p>" for n in notes)
    )


def _environment_section(model: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in model["environment"])
    return f"<h2>Environment</h2><table><tbody>{rows}</tbody></table>"


def _verify_section(model: dict[str, Any]) -> str:
    mark = {True: "pass", False: "FAIL", None: "not checked"}
    rows = "".join(
        f"<tr><td>{e(c['name'])}</td><td>{mark[c['ok']]}</td><td>{e(c['reason'])}</td></tr>"
        for c in model["verify"]
    )
    return (
        "<h2>Verification (repro-kit verify)</h2><table><thead><tr><th>check</th>"
        f"<th>result</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table>"
    )
