"""``python run.py``: in a checkout, an alias of ``toppose run`` (:mod:`toppose.cli.run`)."""

from toppose.cli import alias

if __name__ == "__main__":
    alias("run")
