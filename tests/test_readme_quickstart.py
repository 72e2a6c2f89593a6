"""The README's quickstart runs as written on the real H&M data beside the checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared" / "datasets").resolve()


def quickstart_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\n```bash\n(.*?)\n```\n<!-- /quickstart -->", text, re.S)
    assert block, "README.md has no quickstart block"
    return block.group(1).splitlines()


def test_readme_quickstart_runs_as_written(tmp_path, shared_datasets):
    lines = quickstart_lines()
    assert lines[0] == ". .venv/bin/activate && D=../shared/datasets"
    assert 6 <= len(lines) <= 11 and all(line.startswith("robustrec ") for line in lines[1:])
    # the checkout's layout without writing into it: examples/ linked, D the shared data beside it
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "D": str(SHARED), "COLUMNS": "100"}
    for line in lines[1:]:
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        if line.startswith("robustrec compare"):
            assert "vbpr-hm" in proc.stdout and "vbpr-hm-mg" in proc.stdout
        if line.startswith("robustrec study check"):
            assert "is valid" in proc.stdout and "training cells" in proc.stdout
    reports = sorted(p.name for p in (tmp_path / "reports").glob("*.json"))
    assert [r.split("-hm-")[0] for r in reports] == ["modality-missing-text", "text-keywords"]
    assert (tmp_path / "data" / "hm" / "text_feat.npy").is_file()
    assert not (tmp_path / "study-out").exists()  # study check runs nothing
