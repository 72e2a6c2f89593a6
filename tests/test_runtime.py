"""The allocator tuning keeps freed large blocks mapped (that is how it saves page faults)."""

import subprocess
import sys

import pytest

PROBE = """
import numpy as np
from robustrec.runtime import tune_allocator
tuned = tune_allocator()
block = np.ones(50_000_000)  # 400 MB, touched
del block
rss_kib = int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
print(tuned, rss_kib)
"""


def _probe(env_value: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={"ROBUSTREC_MALLOC_TUNING": env_value, "PATH": "/usr/bin:/bin"}).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_tuned_process_keeps_a_freed_large_block_and_the_switch_turns_it_off():
    tuned, rss_tuned = _probe("1")
    untouched, rss_plain = _probe("0")
    assert (tuned, untouched) == ("True", "False")
    assert rss_tuned - rss_plain > 300_000  # KiB: the 400 MB block stayed mapped only when tuned
