"""glibc's malloc keeps the memory a network's activations free: no page faults on the next call."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# Four 8 MiB blocks alive at once, then freed (32 MiB free at the heap's top: glibc trims it by default), nine
# times over: the page faults of the last eight rounds, before and after keep_freed_memory().
SCRIPT = """
import resource, sys
import numpy as np
from toppose.common.allocator import keep_freed_memory

def faults():
    def round_():
        blocks = [np.ones(2**20) for _ in range(4)]  # 8 MiB each, every page touched
        del blocks
    round_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        round_()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults()
applied = keep_freed_memory()
print(default, applied, faults())
"""


def run_script(env: dict[str, str]) -> tuple[int, bool, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    default, applied, kept = out.stdout.split()
    return int(default), applied == "True", int(kept)


def clean_environment() -> dict[str, str]:
    from toppose.common.allocator import USER_SETTINGS

    return {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}


def test_freed_blocks_are_kept_and_not_faulted_in_again() -> None:
    default, applied, kept = run_script(clean_environment())
    assert applied
    assert default > 8 * 1000  # by default at least one block (2048 pages) faulted in again each round
    assert kept < 100


def test_a_users_own_malloc_tuning_is_left_alone() -> None:
    default, applied, kept = run_script({**clean_environment(), "MALLOC_TRIM_THRESHOLD_": "131072"})
    assert not applied and kept > 8 * 1000
