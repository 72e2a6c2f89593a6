"""Check (or --update) the README's demo output against what the demo prints now.

Runs ``scripts/demo.sh`` in a temporary folder (data, checkpoints and reports all go there; the
checkout is not written), takes the final ``robustrec compare`` output, rendered at 80 columns,
and compares it with the block between ``<!-- demo-output -->`` and ``<!-- /demo-output -->``
in README.md. Exit 0 when they agree, 1 with a diff when they do not.

    python scripts/check_readme_demo.py            # check
    python scripts/check_readme_demo.py --update   # rewrite the README block

The numbers depend on the CPU's vector instructions: MiniLM (the synthetic text features) and
training round differently with AVX2 and AVX-512 kernels, so two machines can both be right and
print different digits. The README quotes the CI machine; a machine whose torch CPU capability
and vendor (``cpu_capability()``, e.g. AVX2-AuthenticAMD) has its own file
``scripts/demo-output/<CAP>.txt``
is checked against that file instead (``--update`` there rewrites that file, not the README).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- demo-output -->", "<!-- /demo-output -->"
MARKER = "== Both risks side by side =="
WIDTH = 80
VARIANTS = ROOT / "scripts" / "demo-output"


def cpu_capability() -> str:
    """torch's CPU kernel level and the CPU vendor, e.g. ``AVX2-AuthenticAMD`` (math libraries
    take other code paths on other vendors at the same level)."""
    import platform

    import torch

    vendor = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{torch.backends.cpu.get_cpu_capability()}-{vendor}"


def demo_output() -> str:
    """The demo's final comparison, as printed on an 80-column terminal-less console."""
    with tempfile.TemporaryDirectory(prefix="robustrec-demo-") as tmp:
        env = {**os.environ, "COLUMNS": str(WIDTH), "TERM": "dumb", "DATA": f"{tmp}/data",
               "CKPT": f"{tmp}/checkpoints", "REPORTS": f"{tmp}/reports",
               "RR": os.environ.get("RR") or f"{sys.executable} -m robustrec"}
        env.pop("FORCE_COLOR", None)
        rr_wrapper = Path(tmp) / "rr"
        rr_wrapper.write_text(f"#!/bin/sh\nexec {env['RR']} \"$@\"\n")
        rr_wrapper.chmod(0o755)
        env["RR"] = str(rr_wrapper)
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"demo failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    _, _, tail = proc.stdout.partition(MARKER)
    if not tail:
        raise SystemExit("demo output has no comparison section")
    return "\n".join(line.rstrip() for line in tail.strip("\n").splitlines())


def readme_block(text: str) -> str:
    match = re.search(re.escape(START) + r"\n```\n(.*?)\n```\n" + re.escape(END), text, re.S)
    if not match:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return match.group(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="Rewrite the README block with the demo's output.")
    args = parser.parse_args(argv)
    text = README.read_text()
    variant = VARIANTS / f"{cpu_capability()}.txt"
    where = str(variant.relative_to(ROOT)) if variant.is_file() else "README.md"
    current = variant.read_text().rstrip("\n") if variant.is_file() else readme_block(text)
    fresh = demo_output()
    if current == fresh:
        print(f"{where} demo output matches what the demo prints")
        return 0
    if args.update:
        if variant.is_file():
            variant.write_text(fresh + "\n")
        else:
            README.write_text(text.replace(f"{START}\n```\n{current}\n```\n{END}",
                                           f"{START}\n```\n{fresh}\n```\n{END}"))
        print(f"{where} demo output updated")
        return 0
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True),
                                               where, "demo output"))
    print(f"\n{where} demo output differs from what the demo prints (CPU capability {cpu_capability()}); "
          f"run scripts/check_readme_demo.py --update")
    return 1


if __name__ == "__main__":
    sys.exit(main())
