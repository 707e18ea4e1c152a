"""The README's data layout block names what layout.py names, and a real run writes exactly that."""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from memphis_incidents import layout

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"<[a-z_]+>|v\d{6}|\d{4}-\d{2}-\d{2}")
EXPECTED = {  # the README's lines, as layout.py spells them (placeholders as *)
    f"data/demo/{layout.BATCH}/{layout.BATCH_DATA}",
    f"data/demo/{layout.BATCH}/{layout.BATCH_META}",
    f"data/demo/{layout.STATE}",
    f"data/demo/{layout.LOAD_RECORD}",
    f"data/demo/{layout.FINGERPRINTS}",
    f"data/demo/{layout.STEP_RECORD}",
    f"data/demo/{layout.WAREHOUSE}/{layout.INCIDENTS}/{layout.CURRENT}",
    f"data/demo/{layout.WAREHOUSE}/{layout.INCIDENTS}/*/{layout.PARTITION}/part-0.parquet",
    f"data/demo/{layout.WAREHOUSE}/{layout.MARTS}/{layout.CURRENT}",
    f"data/demo/{layout.WAREHOUSE}/{layout.MARTS}/*/*/part-0.parquet",
    f"data/demo/{layout.WAREHOUSE}/{layout.MARTS}/*/{layout.MARTS_BASIS}",
    f"data/demo/{layout.WAREHOUSE}/{layout.QUARANTINE_FILE}",
    f"data/demo/{layout.LOCK}",
    f"data/demo/{layout.OUTLINES}",
    f"{layout.REPORTS}/{layout.INDEX_PAGE}",
    f"{layout.REPORTS}/*/{layout.RUN_MANIFEST}",
    f"{layout.REPORTS}/*/{layout.REPORT_PAGE}",
    f"{layout.REPORTS}/*/*.ipynb",
}


def readme_layout() -> list[str]:
    """The paths of the README's data layout block, placeholders (and version numbers, dates) as *."""
    text = (REPO / "README.md").read_text()
    block = text.split("Data lives under", 1)[1].split("```", 2)[1]
    return [PLACEHOLDER.sub("*", line.split()[0]) for line in block.strip().splitlines()]


def as_glob(template: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "*", template)


def test_the_readme_layout_block_names_what_layout_py_names():
    assert sorted(readme_layout()) == sorted(as_glob(path) for path in EXPECTED)


@pytest.mark.slow
def test_a_run_writes_what_the_readme_layout_block_shows(archive):
    root = archive["root"]  # a demo run's data/ and reports/ (and a failed run's reports)
    written = [str(p.relative_to(root)) for top in ("data", layout.REPORTS) for p in (root / top).rglob("*")
               if p.is_file() or p.is_symlink()]
    patterns = readme_layout()
    assert [p for p in patterns if not fnmatch.filter(written, p)] == [], "documented but not written"
    pages = f"{layout.REPORTS}/*/*.html"  # each executed notebook's page, beside it
    undocumented = [path for path in written if not any(fnmatch.fnmatch(path, p) for p in [*patterns, pages])]
    assert undocumented == [], "written but not documented"
