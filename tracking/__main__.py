"""``python -m tracking``: an alias of ``toppose track`` (:mod:`toppose.cli.track`)."""

from toppose.cli import alias

alias("track")
