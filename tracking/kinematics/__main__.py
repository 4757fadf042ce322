"""``python -m tracking.kinematics``: an alias of ``toppose kinematics`` (:mod:`toppose.cli.kinematics`)."""

from toppose.cli import alias

alias("kinematics")
