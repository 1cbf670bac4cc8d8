"""How every console script ends on an expected failure: one line, the right exit status.

``relight-<tool>: error: <message>`` on stderr and exit status 1 for a problem with data,
files, weights, checkpoints or the device (2 for a usage error, as argparse does);
``--debug`` or ``RELIGHT_DEBUG=1`` shows the traceback instead. Anything else (a bug) keeps
its traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import torch

from relight.data.synthetic import RendererMissingError
from relight.devices import DeviceUnavailableError
from relight.models.execution import CompileFailedError
from relight.models.monocular_depth import DepthExtraMissingError
from relight.models.weights import WeightsUnavailableError

#: What a user can cause and fix: missing, unreadable or wrong files and data (OSError:
#: FileNotFoundError, PermissionError, OutputNotWritableError, OutOfSpaceError; ValueError:
#: DataFormatError, CheckpointError, ConfigError and relight's checks of arguments),
#: unavailable weights or devices, a missing optional extra (depth estimation, rendering), a run
#: that diverged, a GPU out of memory, a machine where torch.compile cannot compile (the
#: message names the switch that turns it off).
EXPECTED: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    WeightsUnavailableError,
    DepthExtraMissingError,
    RendererMissingError,
    DeviceUnavailableError,
    CompileFailedError,
    FloatingPointError,
    torch.cuda.OutOfMemoryError,
)

Main = TypeVar("Main", bound=Callable[..., Any])


def debugging(argv: list[str] | None = None) -> bool:
    """Whether tracebacks are wanted: ``--debug`` on the command line or ``RELIGHT_DEBUG``."""
    args = sys.argv[1:] if argv is None else argv
    flag = os.environ.get("RELIGHT_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    return flag or "--debug" in args


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (exit status 2) and which takes
    ``--debug``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_debug_flag(self)

    def error(self, message: str) -> NoReturn:
        fail(self.prog, f"{message} (see {self.prog} --help)", 2)


def add_debug_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--debug``: show the traceback of an error instead of one line."""
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (or RELIGHT_DEBUG=1)"
    )


def fail(prog: str, message: object, status: int = 1) -> NoReturn:
    """Print ``prog: error: message`` (one line) on stderr and exit with ``status``."""
    text = " ".join(str(message).split()) or type(message).__name__
    print(f"{prog}: error: {text}", file=sys.stderr)
    raise SystemExit(status)


def expected(error: BaseException) -> bool:
    """Whether ``error`` is a user's problem (see :data:`EXPECTED`) rather than a bug."""
    return isinstance(error, EXPECTED)


def user_error(error: BaseException) -> BaseException | None:
    """The expected error behind ``error``: ``error`` itself, or the cause of Hydra's
    ``InstantiationException`` (``hydra.utils.instantiate`` wraps what a config's
    ``_target_`` raised, e.g. missing ImageNet weights); ``None`` for a bug."""
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return error if expected(error) else None


def console_script(prog: str) -> Callable[[Main], Main]:
    """Decorate a console script's ``main``: expected failures end in one line (see the
    module doc), unless debugging."""

    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def run(*args: Any, **kwargs: Any) -> Any:
            argv = args[0] if args and isinstance(args[0], list) else kwargs.get("argv")
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                fail(prog, "interrupted", 130)
            except Exception as error:  # noqa: BLE001 - sorted by user_error() below
                cause = user_error(error)
                if debugging(argv) or cause is None:
                    raise
                fail(prog, cause)

        return run  # type: ignore[return-value]

    return wrap
