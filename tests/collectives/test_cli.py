"""``oassim collective``: an nccl-tests style table; bad input is one line with exit status 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from oassim.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_columns_and_sizes(capsys):
    """Doubling sizes from A to B, nccl-tests columns, the chosen algorithm and bottleneck."""
    code, out, _ = _run(capsys, "collective", "--cluster", "dgx-h100-superpod", "--op", "all_reduce",
                        "--ranks", "8", "--sizes", "64M:256M")
    assert code == 0
    lines = [ln for ln in out.splitlines() if not ln.startswith("#")]
    assert len(lines) == 3
    assert "time_us" in out and "algbw_GBps" in out and "busbw_GBps" in out and "bottleneck" in out
    first = lines[0].split()
    assert first[0] == str(64 * 2**20) and first[1] == "64M"
    assert first[-2] == "in_network" and first[-1] == "scaleup"


def test_json_and_csv(capsys):
    """--json gives records with phases and candidates; --csv gives one row per size."""
    code, out, _ = _run(capsys, "collective", "--cluster", "dgx-a100-superpod", "--op", "all_gather",
                        "--ranks", "16", "--groups", "rail", "--sizes", "1M,1G", "--json")
    assert code == 0
    recs = json.loads(out)
    assert [r["size_bytes"] for r in recs] == [2**20, 2**30]
    assert recs[0]["groups"] == 8 and recs[0]["ranks"] == 2
    assert recs[0]["candidates_us"] and recs[0]["phases"]
    code, out, _ = _run(capsys, "collective", "--cluster", "dgx-a100-superpod", "--op", "all_reduce",
                        "--ranks", "8", "--sizes", "1M:4M", "--algo", "ring", "--csv", "--network", "flow")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and rows[0]["algorithm"] == "ring" and rows[0]["network"] == "flow"


def test_accelerators_scales_the_cluster(capsys):
    """--accelerators scales the preset so that more ranks fit."""
    code, out, _ = _run(capsys, "collective", "--cluster", "dgx-h100-superpod", "--accelerators", "2048",
                        "--op", "all_reduce", "--ranks", "2048", "--groups", "rail", "--sizes", "1G")
    assert code == 0 and "2,048 accelerators" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--ranks", "5000"], "beyond the cluster"),
        (["--sizes", "0"], "sizes must be > 0"),
        (["--sizes=-4M"], "sizes must be > 0"),
        (["--algo", "in_network"], "no in-network reduction"),
        (["--algo", "magic"], "unknown algorithm 'magic'"),
        (["--op", "all_to_all", "--algo", "ring"], "cannot run all_to_all"),
        (["--groups", "3"], "do not split into 3"),
        (["--tuning", "nccl-9"], "unknown tuning profile"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    """Bad ranks, sizes, algorithms, groups or tuning: one line on stderr, exit status 2."""
    base = ["collective", "--cluster", "dgx-a100-superpod", "--op", "all_reduce", "--ranks", "8", "--sizes", "1M"]
    args = base.copy()
    for item in [argv[i:i + 2] for i in range(0, len(argv), 2)]:
        key = item[0].split("=")[0]
        if key in args:
            j = args.index(key)
            del args[j:j + 2]
        args += item
    code, out, err = _run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("oassim: error:") and needle in err
    assert "Traceback" not in err


def test_unknown_op_is_a_usage_error():
    """An unknown --op is refused by the parser with exit status 2 and no traceback."""
    proc = subprocess.run([sys.executable, "-m", "oassim.cli", "collective", "--cluster", "dgx-a100-superpod",
                           "--op", "allreduce"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


def test_topo_commands_still_work(capsys):
    """The existing topo subcommands are intact."""
    code, out, _ = _run(capsys, "topo", "list")
    assert code == 0 and "dgx-h100-superpod" in out
