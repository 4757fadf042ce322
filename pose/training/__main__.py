"""``python -m pose.training``: see :mod:`pose.training.cli`."""

from toppose.common.errors import run_cli
from toppose.pose.training.cli import main

run_cli(main)
