"""What ``relight-train`` and ``relight-eval`` check before Hydra runs: the config their
command line composes (every job of a sweep), and their ``--help``.

Hydra itself accepts ``+data.imag_size=3`` and out-of-range values when it composes (and
only prints the config with ``--cfg job``); composing here first and running
:func:`relight.config.validate_config` makes every such mistake a one-line error before
anything starts, ``--cfg job`` included.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import itertools
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from relight.cli.errors import debugging, fail
from relight.config import accepted_arguments, register_configs, suggest, validate_config
from relight.paths import config_dir, use_project_root

#: Hydra's command-line flags that take a value (the next argument, or ``--flag=value``).
FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-dir",
    "-cd",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--experimental-rerun",
}
#: Most jobs of a sweep composed up front (a larger grid: its first jobs).
MAX_JOBS = 32


def split_command_line(argv: list[str]) -> tuple[list[str], str | None, str | None]:
    """A Hydra app's arguments -> (overrides, ``--config-dir``, ``--config-name``)."""
    overrides, search_dir, name, args = [], None, None, iter(argv)
    for arg in args:
        flag, _, inline = arg.partition("=") if arg.startswith("-") else (arg, "", "")
        if flag in FLAGS_WITH_VALUE:
            value = inline or next(args, None)
            if flag in ("--config-dir", "-cd"):
                search_dir = value
            elif flag in ("--config-name", "-cn"):
                name = value
        elif not arg.startswith("-"):
            overrides.append(arg)
    return overrides, search_dir, name


def jobs(overrides: list[str]) -> Iterator[list[str]]:
    """The override lists of the jobs of a command line: ``a=1,2 b=x,y`` gives four;
    sweeper search spaces (``interval(...)``) are left to the sweeper."""
    choices = []
    for parsed in OverridesParser.create().parse_overrides(overrides):
        values = _values(parsed)
        if values is not None:
            choices.append(values)
    return itertools.islice(map(list, itertools.product(*choices)), MAX_JOBS)


def _values(parsed: Override) -> list[str] | None:
    """An override's jobs (``a=1,2``: ``["a=1", "a=2"]``); ``None`` for a search space the
    sweeper samples (a range or an interval)."""
    if not parsed.is_sweep_override():
        return [parsed.input_line]
    try:
        key = parsed.get_key_element()
        return [f"{key}={value}" for value in parsed.sweep_string_iterator()]
    except HydraException:  # continuous: the sweeper samples it
        return None


def _sampled_keys(overrides: list[str]) -> set[str]:
    """The keys of ``overrides`` a sweeper samples per job (``lr=interval(1e-4,1e-3)``)."""
    return {
        parsed.get_key_element().lstrip("+~")
        for parsed in OverridesParser.create().parse_overrides(overrides)
        if _values(parsed) is None
    }


def compose_app(
    app: str, overrides: list[str], search_dir: str | None = None, resolve: bool = False
) -> DictConfig:
    """``conf/<app>.yaml`` composed with ``overrides`` (and ``--config-dir``) as the
    command composes it, the schemas included; with ``resolve``, every interpolation is
    resolved as ``--cfg job --resolve`` does (``${hydra:...}`` included; values only a
    running job knows, like its output folder, stay missing)."""
    return _compose(app, overrides, search_dir, resolve)[0]


def _compose(
    app: str, overrides: list[str], search_dir: str | None, resolve: bool
) -> tuple[DictConfig, set[str]]:
    """:func:`compose_app`'s config and (with ``resolve``) the keys its sweeper sets per job
    (``hydra.sweeper.params``)."""
    register_configs()
    extra = [f"hydra.searchpath=[file://{Path(search_dir).resolve()}]"] if search_dir else []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(app, overrides=[*overrides, *extra], return_hydra_config=resolve)
        if not resolve:
            return cfg, set()
        params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None)
        swept = {str(key).lstrip("+~") for key in params or {}}
        HydraConfig.instance().set_config(cfg)
        job = copy.deepcopy(cfg)  # keeps the root's schema (TrainConfig), unlike a masked copy
        with open_dict(job):
            del job["hydra"]
        OmegaConf.resolve(job)
        return job, swept
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None


def check_command_line(app: str, argv: list[str]) -> None:
    """Compose every job of ``argv``, resolve and validate it: a Hydra or OmegaConf error,
    or a :class:`relight.config.ConfigError`, naming what is wrong. Required values are
    not checked when the config is only printed (``--cfg``)."""
    overrides, search_dir, name = split_command_line(argv)
    printed = any(arg.partition("=")[0] in ("--cfg", "-c") for arg in argv)
    sampled = _sampled_keys(overrides)
    for job in jobs(overrides):
        try:
            cfg, swept = _compose(name or app, job, search_dir, resolve=True)
        except HydraException as error:
            raise HydraException(_override_error(name or app, job, search_dir, error)) from error
        validate_config(cfg, required=not printed, filled_later=sampled | swept)


def _override_error(
    app: str, overrides: list[str], search_dir: str | None, error: HydraException
) -> str:
    """Hydra's error about an override with its cause's first line (``Key 'crop_sise' not
    in 'AugmentConfig'``, ``Invalid value 'skp', expected one of [error, skip]``) and, for
    a key its parent does not have, ``no such key`` and the keys it may have meant."""
    message = re.sub(r"\s*Config search path:.*", "", str(error), flags=re.DOTALL).strip()
    head, _, rest = message.partition("\n")
    head = head.rstrip(".")
    cause = error.__cause__
    reason = str(cause).strip().splitlines()[0] if cause is not None and str(cause) else ""
    if reason and reason not in message:
        head = f"{head}: {reason}"
    match = re.match(r"Could not override '([^']+)'", message)
    if match:
        key = getattr(cause, "full_key", None) or match.group(1)
        hint = _close_keys(app, overrides, search_dir, match.group(1), key)
        if hint:
            return f"{head}: no such key{hint}"
    return f"{head}.\n{rest.strip()}" if rest.strip() else head


def _close_keys(
    app: str, overrides: list[str], search_dir: str | None, overridden: str, key: str
) -> str:
    """For a ``key`` (``trainer.max_epoch``) its parent does not take, composed without the
    override of ``overridden``: the keys it may have meant (``" (did you mean
    'max_epochs'?)"``); ``""`` when the parent takes it (``+key=...`` adds it) or is not
    known."""
    parent, _, name = key.rpartition(".")
    rest = [o for o in overrides if o.partition("=")[0].lstrip("+~") != overridden]
    try:
        cfg = compose_app(app, rest, search_dir)
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except (HydraException, OmegaConfBaseException):
        return ""
    if not isinstance(node, DictConfig):
        return ""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        known = {f.name for f in dataclasses.fields(schema)}
    elif isinstance(node.get("_target_"), str):
        try:
            known = accepted_arguments(get_object(node._target_)) or set()
        except Exception:  # noqa: BLE001 - a target that does not import: no hint
            return ""
    else:  # a plain mapping takes any key: a hint only for a close one
        close = difflib.get_close_matches(name, sorted(map(str, node)), n=3)
        return suggest(name, set(close)) if close else ""
    return suggest(name, known) if known and name not in known else ""


def help_text(app: str, description: str) -> str:
    """``--help``: what users choose (config groups and their options, each experiment
    with its one-line description) and the app's own keys, not the schemas."""
    root = config_dir()
    top = OmegaConf.load(root / f"{app}.yaml")
    groups = [
        entry if isinstance(entry, str) else next(iter(entry)) for entry in top.get("defaults", [])
    ]
    groups = [
        g.split("@")[0]
        for g in groups
        if not str(g).startswith(("_", "/")) and "schema" not in str(g)
    ]
    lines = [description, "", "Config groups (choose with group=option):"]
    for group in groups:
        if group in ("hydra", "paths"):
            continue
        options = sorted(p.stem for p in (root / group).glob("*.yaml"))
        if group == "experiment":
            lines.append("  experiment:")
            lines += [f"    {o:<28} {_description(root / group / f'{o}.yaml')}" for o in options]
        else:
            lines.append(f"  {group}: {', '.join(options)}")
    keys = [k for k in top if k not in ("defaults", "hydra", "paths", "extras", *groups)]
    lines += ["", f"Keys of {app}.yaml (key=value): {', '.join(keys)}"]
    lines += [
        "",
        "Every key of a group: --cfg job (add --package GROUP for one group); "
        "--hydra-help: Hydra's own flags; --debug: tracebacks.",
    ]
    return "\n".join(lines)


def _description(path: Path) -> str:
    """The first comment line of an option file (after ``# @package``)."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and "@package" not in line:
            return line.lstrip("# ").strip()
    return ""


def run_hydra_app(prog: str, app: str, description: str, main: Callable[[], Any]) -> None:
    """What ``relight-train``/``relight-eval`` do before Hydra: paths under the project
    root, ``--debug``, relight's ``--help``, and the command line composed and validated
    (one line and exit status 2 when it is wrong); then Hydra runs ``main``."""
    use_project_root()
    argv = sys.argv[1:]
    if "--debug" in argv:
        os.environ["RELIGHT_DEBUG"] = "1"
        argv = [a for a in argv if a != "--debug"]
        sys.argv = [sys.argv[0], *argv]
    if "--help" in argv or "-h" in argv:
        print(help_text(app, description))
        return
    if not set(argv) & {"--hydra-help", "--info", "--shell-completion", "--version"}:
        try:
            check_command_line(app, argv)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            if debugging():
                raise
            fail(prog, error, 2)
    main()
