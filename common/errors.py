"""User-facing errors: one clear line on stderr and a non-zero exit code, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

EXIT_USER_ERROR = 1
EXIT_MISSING_WEIGHTS = 2
EXIT_BAD_CONFIG = 2  # as argparse's own usage errors
EXIT_MISSING_EXTRA = 2  # as missing weights: the installation, not the input, needs fixing
EXIT_INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C


class UserError(Exception):
    """A bad input or environment problem the user can fix; ``str(err)`` is the whole message."""

    exit_code = EXIT_USER_ERROR


class MissingWeightsError(UserError):
    """Pretrained weights are neither cached nor downloadable."""

    exit_code = EXIT_MISSING_WEIGHTS


class MissingExtraError(UserError):
    """An optional extra of the package (``pip install 'toppose[NAME]'``) is not installed."""

    exit_code = EXIT_MISSING_EXTRA


class ConfigError(UserError):
    """A config value (TOML file, command-line flag or ``--set``) of the wrong type, range or choice."""

    exit_code = EXIT_BAD_CONFIG


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> NoReturn:
    """Run a CLI entry point, turning :class:`UserError` and Ctrl-C into one line and an exit code."""
    try:
        code = main(argv)
    except UserError as err:
        fail(str(err), err.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    raise SystemExit(code or 0)
