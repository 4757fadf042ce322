"""``python -m pose.training``: see :mod:`pose.training.cli`."""

from common.errors import run_cli
from pose.training.cli import main

run_cli(main)
