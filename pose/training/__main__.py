"""``python -m pose.training``: an alias of ``toppose train`` (:mod:`toppose.cli.train`)."""

from toppose.cli import alias

alias("train")
