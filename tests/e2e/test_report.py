"""`repro-kit report`: HTML and Markdown from a real signed bundle against a published reference.

Expected values are recomputed from the bundle's manifest and the reference file, never typed
in. The HTML rendered in headless Chromium (screenshot decoded, DOM dumped) is
tests/system/test_report_chromium.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit.bundle.archive import read_bundle_archive as load_members
from kit.bundle.archive import write_deterministic_targz
from kit.publish.html import render_html
from kit.publish.markdown import md, render_md
from kit.publish.report import build_report
from kit.signing.policy import AcceptUnsigned, policy_for
from kit.verify.verified import VerifiedBundle, require_verified
from tests.bundletools import rename_model
from tests.reportpage import (
    MEAN_TOL,
    REF,
    assert_no_network,
    expected_rows,
    manifest_of,
    parse,
    task_row,
)
from tests.support import run_kit


@pytest.fixture(scope="module")
def signers(report_signers: tuple[Path, str]) -> tuple[Path, str]:
    """biosses_bundle's allowed_signers file and key fingerprint (tests/conftest.py)."""
    return report_signers


# -- HTML ---------------------------------------------------------------------------------


def test_html_tasks_deltas_and_results(html_report: Path, biosses_bundle: Path) -> None:
    expected = expected_rows(biosses_bundle)
    assert expected["BIOSSES"]["ok"] is False and expected["STSBenchmark"]["ok"] is True
    html = html_report.read_text()
    page = parse(html)
    for name, exp in expected.items():
        row = task_row(page, name)
        assert row[4] == f"{exp['score']:.6f}"
        assert row[5] == f"{exp['reference']:.6f}"
        assert row[6] == f"{exp['delta']:+.6f}"
        assert row[7] == ("pass" if exp["ok"] else "FAIL")
        # the chart has a bar per task, its colour and its delta
        colour = "#1a7f37" if exp["ok"] else "#cf222e"
        assert f'fill="{colour}"><title>{name}: {exp["delta"]:+.6f}</title>' in html
    failing = sum(1 for e in expected.values() if not e["ok"])
    assert f"{len(expected) - failing} of {len(expected)} task(s) pass, {failing} fail" in html
    assert "±0.001 tolerance" in html and "±0.005 tolerance" in html
    assert_no_network(html)


def test_html_means_are_named(html_report: Path, biosses_bundle: Path) -> None:
    m = manifest_of(biosses_bundle)
    agg = m["aggregates"]
    names = sorted(m["tasks"])
    expected = expected_rows(biosses_bundle)
    ref_mean = sum(e["reference"] for e in expected.values()) / len(expected)
    page = parse(html_report.read_text())
    means = {r[0]: r for r in page.rows if r and r[0].startswith(("Mean", "STS mean"))}
    label = f"Mean over {len(names)} tasks ({', '.join(names)})"
    task_mean = [r for k, r in means.items() if k.startswith(label)]
    assert len(task_mean) == 1
    assert (
        "partial benchmark, not the MTEB(eng, v1) average, not the MTEB(eng, v2) average"
        in (task_mean[0][0])
    )
    assert task_mean[0][1] == f"{agg['mean_task']:.6f}"
    assert task_mean[0][3] == f"{ref_mean:.6f}"
    assert task_mean[0][4] == f"{agg['mean_task'] - ref_mean:+.6f}"
    assert task_mean[0][5] == ("pass" if abs(agg["mean_task"] - ref_mean) <= MEAN_TOL else "FAIL")
    types = sorted(agg["mean_per_type"])
    assert f"Mean over task types ({len(types)} type: {', '.join(types)})" in means
    assert means[f"Mean over task types ({len(types)} type: STS)"][1] == f"{agg['mean_type']:.6f}"
    assert means["STS mean (2 tasks)"][1] == f"{agg['mean_per_type']['STS']:.6f}"
    # the reference's own means, under the labels the file gives them, with their values
    published = json.loads(REF.read_text())["aggregates"]
    for bench, a in published.items():
        for key in ("mean_task", "mean_type"):
            rows = [r for r in page.rows if r and r[0] == f"{bench} {key}"]
            assert rows and rows[0][2] == f"{a[key]:.6f}"
        rows = [r for r in page.rows if r and r[0] == f"{bench} mean_per_type.Retrieval"]
        assert rows and rows[0][2] == f"{a['mean_per_type']['Retrieval']:.6f}"


def test_html_signer_and_environment(
    html_report: Path, biosses_bundle: Path, signers: tuple[Path, str]
) -> None:
    html = html_report.read_text()
    text = " ".join(parse(html).text)
    assert "reviewer@example.org" in text and signers[1] in text
    assert "Signer (verified)" in text
    env = manifest_of(biosses_bundle)["environment"]
    model = manifest_of(biosses_bundle)["model"]
    env_rows = {r[0]: r[1] for r in parse(html).rows if len(r) == 2}
    assert env_rows["Model"] == model["name"]
    assert env_rows["Model revision"] == model["revision"]
    assert env_rows["torch"] == env["packages"]["torch"]
    assert env_rows["mteb"] == env["packages"]["mteb"]
    assert env_rows["Batch size"] == str(env["batch_size"])
    assert env_rows["Precision"].startswith(env["precision"])
    assert env_rows["repro-kit"].startswith(manifest_of(biosses_bundle)["kit_version"])
    assert "Image" in env_rows


# -- Markdown -----------------------------------------------------------------------------


def md_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


def test_markdown_table(biosses_bundle: Path, hf_home: Path, tmp_path: Path) -> None:
    proc = run_kit(
        ["report", str(biosses_bundle), "--against", str(REF), "--format", "md"], hf_home
    )
    assert proc.returncode == 0, proc.stderr
    expected = expected_rows(biosses_bundle)
    rows = md_rows(proc.stdout)
    for name, exp in expected.items():
        row = [r for r in rows if r[0] == md(name) and len(r) == 7]
        assert len(row) == 1, rows
        assert row[0][3:] == [
            f"{exp['score']:.6f}",
            f"{exp['reference']:.6f}",
            f"{exp['delta']:+.6f}",
            "pass" if exp["ok"] else "**FAIL**",
        ]
    assert any(r[0].startswith("Mean over 2 tasks (BIOSSES, STSBenchmark)") for r in rows)
    assert "signature present, not checked" in proc.stdout  # no trust anchor given
    assert "not the MTEB(eng, v2) average" in proc.stdout
    # -o with a .md name writes Markdown, atomically (no temp file left beside it)
    dest = tmp_path / "out" / "report.md"
    proc = run_kit(["report", str(biosses_bundle), "--against", str(REF), "-o", str(dest)], hf_home)
    assert proc.returncode == 0, proc.stderr
    assert md_rows(dest.read_text()) == rows
    assert sorted(p.name for p in dest.parent.iterdir()) == ["report.md"]


def _verified(bundle: Path) -> VerifiedBundle:
    """The bundle as the report command hands it on: verified, unsigned accepted."""
    return require_verified(bundle, AcceptUnsigned(None), "refusing to report on bundle")


# -- references: another bundle, a partial reference, none --------------------------------


def test_against_another_bundle_and_partial_reference(biosses_bundle: Path, tmp_path) -> None:
    model = build_report(_verified(biosses_bundle), against=biosses_bundle)
    assert model["against"]["kind"] == "bundle"
    assert all(r["delta"] == 0 and r["ok"] for r in model["tasks"])
    assert model["summary"]["ok"] is True
    # a flat {task: score} reference holding only one task: the other has none
    published = json.loads(REF.read_text())["task_main_scores"]
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"STSBenchmark": published["STSBenchmark"]}))
    model = build_report(_verified(biosses_bundle), against=flat)
    by_task = {r["task"]: r for r in model["tasks"]}
    assert by_task["BIOSSES"]["ok"] is None and by_task["BIOSSES"]["reference"] is None
    labels = [m["label"] for m in model["means"]]
    assert "Mean over 1 task with a reference score (STSBenchmark)" in labels
    assert any(lb.startswith("Mean over 2 tasks (BIOSSES, STSBenchmark)") for lb in labels)
    assert "no reference" in render_html(model)
    # a folder of mteb result files (here the bundle's own): every delta is zero
    results = tmp_path / "results"
    results.mkdir()
    for name, data in load_members(biosses_bundle).items():
        if name.startswith("results/") and name.endswith(("BIOSSES.json", "STSBenchmark.json")):
            (results / Path(name).name).write_bytes(data)
    model = build_report(_verified(biosses_bundle), against=results)
    assert model["against"]["kind"] == "results folder"
    assert [r["delta"] for r in model["tasks"]] == [0.0, 0.0]
    # no reference at all: scores and named means, no chart
    model = build_report(_verified(biosses_bundle))
    html = render_html(model)
    assert "<svg" not in html and "no reference given" in html
    assert "not an MTEB benchmark average" in model["scope"]["text"]


def test_unsigned_bundle_and_escaping(biosses_run: Path, hf_home: Path, tmp_path: Path) -> None:
    """Untrusted names from someone else's bundle are escaped in HTML and Markdown."""
    run = tmp_path / "run"
    shutil.copytree(biosses_run, run)
    evil = 'evil/<script>alert(1)</script>"><img src=x onerror=alert(2)>|x|*y*'
    rename_model(run, evil)  # everywhere, so that the bundle is consistent and verifies
    bundle = tmp_path / "evil.tar.gz"
    proc = run_kit(["bundle", str(run), "-o", str(bundle)], hf_home)
    assert proc.returncode == 0, proc.stderr
    model = build_report(_verified(bundle), against=REF)
    assert model["signer"]["status"] == "unsigned"
    html = render_html(model)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img" in html
    assert evil in " ".join(parse(html).text)  # shown as text, intact
    assert_no_network(html)
    # task names too (a renderer test on the plain model: names reach every section)
    model["tasks"][0]["task"] = "<b>T|1</b>"
    html, text = render_html(model), render_md(model)
    assert "<b>T" not in html and "&lt;b&gt;T|1&lt;/b&gt;" in html
    assert "<b>" not in text and "<script" not in text
    rows = md_rows(text)
    assert next(r for r in rows if r[0] == md("<b>T|1</b>"))[1] == "STS"
    assert all(len(r) == 2 for r in md_rows(text.split("#### Environment")[1]))


# -- refusals and bad input: one line, a documented exit code, no traceback ----------------


def one_line_error(proc: subprocess.CompletedProcess, code: int, words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro-kit: error:"), proc.stderr
    assert words in lines[0], lines[0]


def test_refuses_tampered_or_wrongly_signed_bundle(
    biosses_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    members = load_members(biosses_bundle)
    result = next(n for n in members if n.endswith("/BIOSSES.json"))
    raw = json.loads(members[result])
    raw["scores"]["test"][0]["main_score"] = 0.99
    members[result] = json.dumps(raw).encode()
    bad = tmp_path / "tampered.tar.gz"
    write_deterministic_targz(members, bad)
    out = tmp_path / "r.html"
    proc = run_kit(["report", str(bad), "--against", str(REF), "-o", str(out)], hf_home)
    one_line_error(proc, 11, "refusing to report")
    assert not out.exists()
    # signed by the fixture's key, checked against another key: the verify code (22)
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    proc = run_kit(["report", str(biosses_bundle), "--public-key", f"{other}.pub"], hf_home)
    one_line_error(proc, 22, "signature")


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (lambda d, b: ["report", str(d / "missing.tar.gz")], 3, "not found"),
        (lambda d, b: ["report", str(b), "--against", str(d / "nope.json")], 3, "not found"),
        (lambda d, b: ["report", str(b), "--against", str(d / "bad.json")], 2, "not valid JSON"),
        (lambda d, b: ["report", str(b), "--against", str(d / "list.json")], 2, "task_main_scores"),
        (lambda d, b: ["report", str(b), "--against", str(d / "other.json")], 14, "no task"),
        (lambda d, b: ["report", str(b), "-o", str(d / "file.txt" / "r.html")], 7, "cannot write"),
        (lambda d, b: ["report", str(b), "--tolerance", "-1"], 2, "tolerance"),
    ],
)
def test_bad_input(make, code, words, biosses_bundle: Path, hf_home: Path, tmp_path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text('{"task_main_scores": ["STS12"]}')
    (tmp_path / "other.json").write_text('{"SciFact": 0.6}')
    (tmp_path / "file.txt").write_text("a file, not a folder")
    proc = run_kit(make(tmp_path, biosses_bundle), hf_home)
    if code == 2 and "tolerance" in words:  # click's own usage error (two lines, exit 2)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "--tolerance" in proc.stderr
        return
    one_line_error(proc, code, words)


def test_cli_help_lists_report() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "report", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "--against" in proc.stdout and "--mean-tolerance" in proc.stdout


def test_report_model_matches_verify_policy(biosses_bundle: Path, signers) -> None:
    """The signature is checked by kit/verify/: a good one names the principal."""
    model = build_report(
        require_verified(
            biosses_bundle, AcceptUnsigned(policy_for(allowed_signers=signers[0])), "report"
        )
    )
    assert model["signer"]["status"] == "verified"
    assert model["signer"]["principals"] == ["reviewer@example.org"]
    assert model["signer"]["fingerprint"] == signers[1]
    assert [c["name"] for c in model["verify"]][:2] == ["archive", "signature"]
