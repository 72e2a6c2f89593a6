"""The README quotes the demo's comparison verbatim: rerun the demo and check that it still agrees."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_demo_block_is_what_the_demo_prints(capsys):
    spec = importlib.util.spec_from_file_location("check_readme_demo",
                                                  os.path.join(ROOT, "scripts", "check_readme_demo.py"))
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    code = check.main([])
    out = capsys.readouterr().out
    assert code == 0, out
