"""``oassim evaluate --out``: an existing report needs --force; spec text cannot inject HTML or links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from oassim.cli import main
from tests.experiments import fakesim

PAYLOAD = "<script>alert(1)</script> <img src=x onerror=alert(2)> [click](javascript:alert(3)) ![i](http://x/y.png)"
SPEC = {"name": "hostile", "domain": "scale_up", "lane_rate_Gbps": 100.0, "lanes_per_port": 2,
        "switch": {"radix": 64, "in_network_reduction": False},
        "description": f"described as {PAYLOAD}", "notes": f"noted as {PAYLOAD}"}


def write_spec(folder: Path) -> Path:
    p = folder / "hostile.yaml"
    p.write_text(yaml.safe_dump(SPEC, sort_keys=False), encoding="utf-8")
    return p


def test_existing_report_is_refused_without_force(tmp_path, capsys):
    """--out holding an earlier report: exit 2, one line naming --out and --force; the folder is untouched
    and no temporary folder is left beside it."""
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("earlier report")
    spec = write_spec(tmp_path)
    assert main(["evaluate", str(spec), "--out", str(out), "--quick", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("oassim: error: argument --out: "), err
    assert "--force" in err
    assert [p.name for p in out.iterdir()] == ["report.html"] and (out / "report.html").read_text() == "earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.yaml", "report"]


@pytest.fixture(scope="module")
def forced_report(tmp_path_factory) -> Path:
    """A quick evaluation of the hostile spec (stand-in scheduler, as the ``fake_sim`` fixture) with --force
    into a folder holding an earlier report."""
    from oassim.experiments import runner

    d = tmp_path_factory.mktemp("evaluate")
    out = d / "report"
    out.mkdir()
    (out / "report.html").write_text("earlier report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "_simulator", lambda: fakesim.fake_simulate)
        assert main(["evaluate", str(write_spec(d)), "--out", str(out), "--quick", "--quiet", "--force"]) == 0
    return out


def test_force_replaces_the_report(forced_report):
    """With --force the earlier report.html is replaced by the new one, which names the candidate."""
    html = (forced_report / "report.html").read_text()
    assert html != "earlier report" and "hostile" in html
    assert (forced_report / "report.md").is_file() and (forced_report / "results.json").is_file()


def test_spec_text_is_escaped_in_markdown_and_html(forced_report):
    """A spec whose description and notes hold <script>, an <img> and Markdown links: neither report
    carries raw HTML from them, and the Markdown has no link or image made of them."""
    md = (forced_report / "report.md").read_text()
    html = (forced_report / "report.html").read_text()
    assert "described as" in md and "noted as" in md
    for text in (md, html):
        assert "<script" not in text.lower() and "<img src=x" not in text.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not re.search(r"(?<!\\)\]\(javascript:", md) and not re.search(r"(?<!\\)!\[i(?<!\\)\]\(http", md)
    assert not re.search(r"""href\s*=\s*["']?javascript:""", html, re.I)
