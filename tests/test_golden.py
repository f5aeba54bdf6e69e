"""Golden pages: the small fixture site's output, byte for byte.

After an intended change to templates or rendering, refresh with:
    pytest tests/test_golden.py --update-golden
and review the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli

GOLDEN = Path(__file__).parent / "golden" / "small-site"
CASES = [
    "help/cigna/cimt/prior-authorization/index.html",  # hand-written layer
    "help/humana/humira/step-therapy/index.html",  # data layer, drug ladder
    "help/cigna/index.html",  # payer hub
    "index.html",
    "404.html",
    "sitemap.xml",
]


@pytest.mark.parametrize("case", CASES)
def test_output_matches_golden(make_site, tmp_path, request, case):
    out = tmp_path / "out"
    assert run_cli("build", "--site", str(make_site()), "--out", str(out)).exit_code == 0
    golden = GOLDEN / case
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes((out / case).read_bytes())
    assert (out / case).read_bytes() == golden.read_bytes(), f"{case} changed; see tests/test_golden.py"
