"""The docs cannot drift from the code: README.md and docs/*.md are read as a user reads
them, and what they show is checked against the real configs, parsers and files.

- every relative link (and ``#anchor``) points at an existing file (and heading);
- every ``relight-train`` / ``relight-eval`` command line (```bash blocks, ``\\``
  continuations joined, and backticked ones) composes with Hydra's compose API: Hydra's
  flags split off, comma sweeps expanded, ``--config-dir`` made of the config files the
  docs show; its ``_target_`` nodes then pass :func:`relight.config.check_targets`, as the
  commands check them before a run. Lines with ``<name>`` placeholders are patterns, not
  commands, and are skipped;
- every backticked override (``model.net.activation_checkpointing=true``, ``logger=wandb``)
  composes as an override of ``relight-train``, or else of ``relight-eval``; those the docs
  show as errors fail with the words the docs quote;
- every argparse command of a ```bash block parses with its real parser (relight-predict
  and relight-data also pass the checks that run before any file is read), and every
  backticked ``--flag`` is an option of a relight command, with a valid choice when given;
- every ``make <target>`` exists in the Makefile;
- every backticked ``relight.<module>[.<name>]`` imports and every backticked repository
  path exists; the README's "What is here" tree and the conf/ tree of docs/training.md name
  what is there, and all of it.

Nothing here reads data or builds a network: the whole file takes seconds.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import itertools
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from relight.config import check_targets, register_configs
from relight.paths import config_dir

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCE = ROOT / "src" / "relight"

#: The console scripts over Hydra (their config) and over argparse (their module).
HYDRA_APPS = {"relight-train": "train", "relight-eval": "eval"}
ARGPARSE_APPS = {
    f"relight-{name}": f"relight.cli.{name}"
    for name in ("predict", "export", "report", "data", "minividit", "convert", "bench")
}
#: Hydra's own command-line flags: those that take a value, and the others.
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-dir", "-cd"}
HYDRA_FLAGS = {*HYDRA_FLAGS_WITH_VALUE, "-m", "--multirun", "--help", "--hydra-help"}

#: Backticked spans that look like ``key=value`` but are no override of relight-train or
#: relight-eval, each with the reason.
NOT_OVERRIDES = {
    # keyword arguments of Python constructors, in the Python API's terms (the model's
    # switches as its table names them, the DataModule's arguments, timm's and Lightning's)
    'encoder_weights="imagenet"',  # S3Net(...)
    'encoder_weights="none"',  # S3Net(...)
    "encoder_weights=/path/to/res2net101d.safetensors",  # S3Net(...)
    "allow_random_init=True",  # S3Net(...)
    "adapt_stem=True",  # S3Net(...)
    "depth=false",  # S3Net(...): a checkpoint's model without depth input
    "global_residual=true",  # S3Net(...): the CPU recipe's switch (model.net.global_residual)
    "attention=false",  # S3Net(...): a checkpoint's switch, in an error's explanation
    "levels=0",  # W-SSIM's levels (loss.wssim_levels in configs)
    "allow_same_lighting=True",  # VIDITDataModule(...)
    "samples_per_scene=None",  # VIDITDataModule(...)
    "samples_per_scene=k",  # VIDITDataModule(...)
    "val_scenes=[...]",  # VIDITDataModule(...)
    "allow_pickle=True",  # VIDITDataModule(...)
    "allow_pickle=False",  # VIDITDataModule(...)
    "allow_pickle=false",  # a row of the bad-input matrix (the VIDITDataModule argument)
    "cache_dir=...",  # VIDITDataModule(...)
    "on_bad_item=error",  # VIDITDataModule(...) (data.on_bad_item=... is checked too)
    "on_bad_item=skip",  # VIDITDataModule(...)
    "pretrained=True",  # timm.create_model(...)
    "use_distributed_sampler=False",  # lightning.Trainer(...)
    # W&B tags relight writes (key=value strings), not overrides
    "attention=False",
    "wssim_levels=0",
}
#: Overrides the docs show as errors of relight-train, and the words they quote from it.
DOCUMENTED_ERRORS = {
    "data.imag_size=64": "Could not override 'data.imag_size'",
    "loss.wssim=heavy": "Error merging override",
}
#: Backticked ``relight.<name>`` that are no Python objects.
NOT_PYTHON_NAMES = {
    "relight.net_config",  # the key of the network config in an exported model's metadata
}
#: Backticked paths under these folders are files of the repository (others are outputs:
#: logs/, data/, benchmarks/, or folders of a layout); ``relight/...`` is under src/.
REPOSITORY_FOLDERS = ("src/", "tests/", "conf/", "docs/", "notebooks/", "experiments/")
REPOSITORY_FOLDERS += ("constraints/", ".ci/", "relight/")
NOT_REPOSITORY_PATHS = {
    "relight/conf/",  # the configs inside the built wheel (setup.py copies conf/ there)
}
#: conf/ groups the tree names without listing their single option (``default``).
GROUPS_NAMED_ONLY = {"paths", "hydra"}


# --- reading the pages -------------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    """A piece of a page: where it is (for test ids and messages) and its text."""

    page: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if ROOT in self.page.parents else self.page.name
        return f"{page}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


@dataclass(frozen=True)
class Block:
    """A fenced block: its language, body, first body line and the text before it."""

    language: str
    body: str
    line: int
    before: str


FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found, end = [], 0
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(2)) + 1
        found.append(Block(match.group(1), match.group(2), line, text[end : match.start()]))
        end = match.end()
    return found


def prose(page: Path) -> str:
    """The page without its fenced blocks (their lines kept blank: line numbers hold)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text())


def inline_code(page: Path) -> list[Snippet]:
    """Every backticked span of the prose, its whitespace (line breaks) made single spaces."""
    text = prose(page)
    return [
        Snippet(page, text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()))
        for m in INLINE.finditer(text)
    ]


def shell_lines(page: Path) -> list[Snippet]:
    """The command lines of the ```bash blocks (``\\`` continuations joined) and the
    ``$ ``-prompted lines of output blocks, each with the line it starts on."""
    lines = []
    for block in blocks(page):
        if block.language not in ("bash", ""):
            continue
        pending, start = "", None
        for offset, raw in enumerate(block.body.split("\n")):
            start = block.line + offset if start is None else start
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            text, first, pending, start = " ".join((pending + raw).split()), start, "", None
            if block.language == "":
                if not text.startswith("$ "):
                    continue
                text = text[2:]
            if text:
                lines.append(Snippet(page, first, text))
    return lines


def commands(text: str) -> Iterator[list[str]]:
    """The argument vectors of a shell line, comments dropped (``&&``, ``;``, ``|`` split
    it); ``time X`` is ``X`` and ``python -m relight.train`` is ``relight-train``."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    argv: list[str] = []
    for token in [*lexer, ";"]:
        if set(token) <= set(";&|"):
            if argv[:1] == ["time"]:
                argv = argv[1:]
            if argv[:3] == ["python", "-m", "relight.train"]:
                argv = ["relight-train", *argv[3:]]
            if argv:
                yield argv
            argv = []
        else:
            argv.append(token)


def command_lines(pages: list[Path], apps: dict[str, str], inline: bool) -> list[Snippet]:
    """The command lines of ``apps`` in the shell blocks (and backticked, with ``inline``;
    a bare command name there is a mention, not a command). A Hydra line with a ``<name>``
    placeholder is a pattern (``ablation=<name>``), not a command: skipped; to argparse a
    placeholder is just a string."""
    found = []
    for page in pages:
        spans = [s for s in inline_code(page) if len(s.text.split()) > 1] if inline else []
        for snippet in [*shell_lines(page), *spans]:
            for argv in commands(snippet.text):
                pattern = apps is HYDRA_APPS and any("<" in arg for arg in argv)
                if argv[0] in apps and not pattern:
                    found.append(Snippet(page, snippet.line, shlex.join(argv)))
    return found


def shown_files(pages: list[Path]) -> dict[str, str]:
    """The files the docs show whole: a fenced block right after a paragraph that starts
    with the file's backticked path (```my_exps/experiment/foo.yaml```: ...)."""
    files = {}
    for page in pages:
        for block in blocks(page):
            paragraph = block.before.strip().split("\n\n")[-1]
            name = re.match(r"`([\w./-]+\.(?:yaml|py))`", paragraph)
            if name:
                files[name.group(1)] = block.body
    return files


# --- links -------------------------------------------------------------------------------


def links(pages: list[Path]) -> list[Snippet]:
    return [
        Snippet(page, prose(page).count("\n", 0, m.start()) + 1, m.group(1))
        for page in pages
        for m in LINK.finditer(prose(page))
        if not re.match(r"[a-z]+:", m.group(1))  # http:, https:, mailto:
    ]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings (``## Checking a download: `relight-data
    check``` -> ``checking-a-download-relight-data-check``)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def check_link(link: Snippet) -> None:
    path, _, anchor = link.text.partition("#")
    target = (link.page.parent / path).resolve() if path else link.page
    assert target.exists(), f"{link}: no such file {target}"
    if anchor:
        assert target.suffix == ".md", f"{link}: an anchor into a file that is not a page"
        assert anchor in anchors(target), f"{link}: no heading #{anchor} in {target.name}"


# --- Hydra commands and overrides --------------------------------------------------------

#: A config override as Hydra reads it: ``key=value``, ``a.b.c=value``, ``group/sub=option``,
#: ``+key=value``. Names start lower-case: upper-case ``NAME=value`` are environment or make
#: variables (``HF_HUB_OFFLINE=1``, ``DATA=DIR``), never config keys.
OVERRIDE = re.compile(r"[+~]?[a-z_]\w*(?:[./]\w+)*=\S*")


def optional(token: str) -> str:
    """``[key=value]`` (an optional argument, in the docs' notation) -> ``key=value``."""
    return token[1:-1] if token.startswith("[") and token.endswith("]") else token


def sweep(override: str) -> list[str]:
    """``key=a,b`` -> ``[key=a, key=b]`` (Hydra's basic sweep); lists, dicts and sweeper
    functions (``[a,b]``, ``interval(...)``) are one value."""
    key, value = override.split("=", 1)
    if "," not in value or value[:1] in "[{" or "(" in value:
        return [override]
    return [f"{key}={choice}" for choice in value.split(",")]


def jobs(overrides: list[str]) -> list[list[str]]:
    """The override lists of every job of a (possibly swept) command line."""
    return [list(job) for job in itertools.product(*map(sweep, overrides))]


def split_hydra_flags(argv: list[str]) -> tuple[list[str], str | None]:
    """A relight-train/-eval command line -> its overrides and its ``--config-dir``."""
    overrides, search_dir, args = [], None, iter(argv[1:])
    for arg in args:
        if arg in HYDRA_FLAGS_WITH_VALUE:
            value = next(args, None)
            if arg in ("--config-dir", "-cd"):
                search_dir = value
        elif arg.startswith("-"):
            assert arg in HYDRA_FLAGS, f"{arg}: not a flag of {argv[0]} ({sorted(HYDRA_FLAGS)})"
        else:
            overrides.append(arg)
    return overrides, search_dir


def compose_app(app: str, overrides: list[str]) -> None:
    """Compose ``conf/<app>.yaml`` as the command does (the schemas included) and check its
    ``_target_`` nodes as the command does before it runs."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(app, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()
    check_targets(cfg)


@contextmanager
def user_config_dir(
    search_dir: str | None, pages: list[Path], tmp_path: Path
) -> Iterator[list[str]]:
    """``--config-dir DIR`` as an entry of Hydra's search path, DIR (and the modules its
    configs import) made of the files the docs show."""
    if search_dir is None:
        yield []
        return
    files = shown_files(pages)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    folder = tmp_path / search_dir
    assert folder.is_dir(), f"--config-dir {search_dir}: the docs show no file in it"
    modules = [name.removesuffix(".py") for name in files if re.fullmatch(r"\w+\.py", name)]
    sys.path.insert(0, str(tmp_path))
    try:
        yield [f"hydra.searchpath=[file://{folder}]"]
    finally:
        sys.path.remove(str(tmp_path))
        for module in modules:
            sys.modules.pop(module, None)


def check_hydra_command(command: Snippet, pages: list[Path], tmp_path: Path) -> None:
    argv = shlex.split(command.text)
    overrides, search_dir = split_hydra_flags(argv)
    with user_config_dir(search_dir, pages, tmp_path) as search:
        for job in jobs(overrides):
            try:
                compose_app(HYDRA_APPS[argv[0]], [*search, *job])
            except Exception as error:  # noqa: BLE001 - any failure is the docs' failure
                pytest.fail(f"{command}\n{' '.join(job)}: {type(error).__name__}: {error}")


def inline_overrides(pages: list[Path]) -> list[Snippet]:
    """Backticked spans made of overrides only (``trainer=ddp trainer.devices=4``; an
    optional ``[key=value]`` counts), less :data:`NOT_OVERRIDES` and ``<name>`` patterns."""
    return [
        snippet
        for page in pages
        for snippet in inline_code(page)
        if all(OVERRIDE.fullmatch(optional(token)) for token in snippet.text.split())
        and snippet.text not in NOT_OVERRIDES
        and "<" not in snippet.text
    ]


def check_override(override: Snippet) -> None:
    tokens = [optional(token) for token in override.text.split()]
    if override.text in DOCUMENTED_ERRORS:
        with pytest.raises(Exception, match=re.escape(DOCUMENTED_ERRORS[override.text])):
            compose_app("train", tokens)
        return
    for job in jobs(tokens):
        errors = []
        for app in HYDRA_APPS.values():  # an override of relight-train, else of relight-eval
            try:
                compose_app(app, job)
                break
            except Exception as error:  # noqa: BLE001
                errors.append(f"relight-{app}: {type(error).__name__}: {error}")
        else:
            pytest.fail(f"{override}\n" + "\n".join(errors))


# --- argparse commands and flags ---------------------------------------------------------


class Parsed(Exception):
    """Raised where a command would start its work: its arguments were accepted."""


class Captured(Exception):
    """Carries a command's parser out of its ``main``."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


#: Where a command's argument checks end and its work starts (else right after
#: ``parse_args``): relight-predict checks flag combinations, depth ranges and the size
#: policy before it checks the files; relight-data its worker count before the folders.
WORK_STARTS = {"relight-predict": "check_inputs", "relight-data": "find_folders"}


def raise_parsed(*args: object, **kwargs: object) -> None:
    raise Parsed


def check_argparse_command(command: Snippet, capsys: pytest.CaptureFixture) -> None:
    argv = shlex.split(command.text)
    module = importlib.import_module(ARGPARSE_APPS[argv[0]])
    if argv[0] in WORK_STARTS:
        stop = mock.patch.object(module, WORK_STARTS[argv[0]], raise_parsed)
    else:
        parse_args = argparse.ArgumentParser.parse_args

        def parse_then_stop(self, args=None, namespace=None):  # noqa: ANN001, ANN202
            parse_args(self, args, namespace)
            raise Parsed

        stop = mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with stop, mock.patch("torch.set_num_threads"):
        try:
            module.main(argv[1:])
        except Parsed:
            return
        except SystemExit as exit:
            if exit.code == 0 and "--help" in argv:
                return
            pytest.fail(f"{command}\nexit {exit.code}: {capsys.readouterr().err.strip()}")
    pytest.fail(f"{command}: ran to its end without reaching its work")


@functools.cache
def parser_of(command: str) -> argparse.ArgumentParser:
    """The real parser of an argparse command, taken out of its ``main``."""

    def capture(self, args=None, namespace=None):  # noqa: ANN001, ANN202
        raise Captured(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture):
        try:
            importlib.import_module(ARGPARSE_APPS[command]).main([])
        except Captured as captured:
            return captured.parser
    raise AssertionError(f"{command}: main() parsed no arguments")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }


def flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def all_flags() -> dict[str, list[argparse.Action]]:
    """Every option of every relight command (sub-commands included)."""
    found: dict[str, list[argparse.Action]] = {flag: [] for flag in HYDRA_FLAGS}
    for command in ARGPARSE_APPS:
        parser = parser_of(command)
        for each in [parser, *subcommands(parser).values()]:
            for flag, action in flags(each).items():
                found.setdefault(flag, []).append(action)
    return found


def inline_flags(pages: list[Path]) -> list[Snippet]:
    """Backticked spans that are an argparse command (``relight-predict --threads 2``) or
    start with a ``--flag`` (``--depth-range MIN MAX``)."""
    return [
        snippet
        for page in pages
        for snippet in inline_code(page)
        if snippet.text.split()[0] in ARGPARSE_APPS or snippet.text.startswith("--")
    ]


def check_inline_flags(span: Snippet) -> None:
    argv = span.text.split()
    if argv[0] in ARGPARSE_APPS:  # a command, perhaps with a sub-command: its own options
        parser = parser_of(argv[0])
        subs = subcommands(parser)
        if subs:
            assert argv[1:2] and argv[1] in subs, f"{span}: its sub-commands are {sorted(subs)}"
            parser = subs[argv[1]]
        known = {flag: [action] for flag, action in flags(parser).items()}
    else:
        known = all_flags()
    for position, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        assert arg in known, f"{span}: {arg} is no option of {argv[0]} or any relight command"
        value = argv[position + 1] if position + 1 < len(argv) else None
        choices = [action.choices for action in known[arg] if action.choices is not None]
        if value and choices and not value.isupper() and not value.startswith(("-", "[")):
            for word in value.split("|"):  # auto|cpu|cuda: each alternative
                assert any(word in c for c in choices), f"{span}: {word} is no choice of {arg}"


# --- make targets, Python names, repository paths, trees ---------------------------------

MAKE = re.compile(r"(?:^|[\s;&(`])make ([a-z][\w-]*)")


def make_mentions(pages: list[Path]) -> list[Snippet]:
    """``make <target>`` in backticks and in ```bash blocks, their comments included."""
    return [
        Snippet(page, snippet.line, target)
        for page in pages
        for snippet in [
            *inline_code(page),
            *(Snippet(page, b.line, b.body) for b in blocks(page) if b.language == "bash"),
        ]
        for target in MAKE.findall(snippet.text)
    ]


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):(?!=)", (ROOT / "Makefile").read_text(), re.M))


def python_names(pages: list[Path]) -> list[Snippet]:
    return [
        Snippet(page, span.line, re.sub(r"\(.*\)$", "", span.text))
        for page in pages
        for span in inline_code(page)
        if re.fullmatch(r"relight(\.\w+)+(\(.*\))?", span.text)
        and span.text not in NOT_PYTHON_NAMES
    ]


def check_python_name(name: Snippet) -> None:
    parts = name.text.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            assert hasattr(found, attribute), f"{name}: {found.__name__} has no {attribute}"
            found = getattr(found, attribute)
        return
    raise AssertionError(f"{name}: no such module")


def repository_paths(pages: list[Path]) -> list[Snippet]:
    return [
        span
        for page in pages
        for span in inline_code(page)
        if re.fullmatch(r"[\w./-]+", span.text)
        and span.text.startswith(REPOSITORY_FOLDERS)
        and span.text not in NOT_REPOSITORY_PATHS
    ]


def readme_tree() -> str:
    return next(b.body for b in blocks(ROOT / "README.md") if b.body.startswith("src/relight/"))


def conf_tree() -> tuple[str, dict[str, str]]:
    """docs/training.md's conf/ tree: its first line, and each group's text."""
    body = next(b.body for b in blocks(ROOT / "docs" / "training.md") if b.body.startswith("conf/"))
    top, *lines = body.split("\n")[1:]
    sections: dict[str, str] = {}
    group = None
    for line in lines:
        named = re.findall(r"(?:^|\s)(\w+)/", re.sub(r"\([^)]*\)", "", line))
        for name in named:
            sections.setdefault(name, "")
        group = named[-1] if named else group
        if group:
            sections[group] += " " + re.sub(r"(?:^|\s)\w+/", " ", line)
    return top, sections


# --- the tests ---------------------------------------------------------------------------


def ids(snippets: list[Snippet]) -> list[str]:
    return [snippet.where for snippet in snippets]


LINKS = links(PAGES)
HYDRA_COMMANDS = command_lines(PAGES, HYDRA_APPS, inline=True)
INLINE_OVERRIDES = inline_overrides(PAGES)
ARGPARSE_COMMANDS = command_lines(PAGES, ARGPARSE_APPS, inline=False)
INLINE_FLAGS = inline_flags(PAGES)


@pytest.mark.parametrize("link", LINKS, ids=ids(LINKS))
def test_link_points_at_a_file_and_heading(link: Snippet) -> None:
    check_link(link)


@pytest.mark.parametrize("command", HYDRA_COMMANDS, ids=ids(HYDRA_COMMANDS))
def test_hydra_command_composes(command: Snippet, tmp_path: Path) -> None:
    check_hydra_command(command, PAGES, tmp_path)


@pytest.mark.parametrize("override", INLINE_OVERRIDES, ids=ids(INLINE_OVERRIDES))
def test_inline_override_composes(override: Snippet) -> None:
    check_override(override)


@pytest.mark.parametrize("command", ARGPARSE_COMMANDS, ids=ids(ARGPARSE_COMMANDS))
def test_argparse_command_parses(command: Snippet, capsys: pytest.CaptureFixture) -> None:
    check_argparse_command(command, capsys)


@pytest.mark.parametrize("span", INLINE_FLAGS, ids=ids(INLINE_FLAGS))
def test_inline_flag_is_an_option(span: Snippet) -> None:
    check_inline_flags(span)


def test_make_targets_exist() -> None:
    mentions = make_mentions(PAGES)
    missing = [str(mention) for mention in mentions if mention.text not in make_targets()]
    assert not missing, "make targets missing from the Makefile:\n" + "\n".join(missing)
    assert {"train", "test"} <= {mention.text for mention in mentions}


def test_python_names_import() -> None:
    names = python_names(PAGES)
    for name in names:
        check_python_name(name)
    assert len(names) >= 5


def test_repository_paths_exist() -> None:
    paths = repository_paths(PAGES)
    for path in paths:
        where = ROOT / "src" / path.text if path.text.startswith("relight/") else ROOT / path.text
        assert where.exists(), f"{path}: no such file or folder"
    assert len(paths) >= 5


def test_readme_tree_names_every_module() -> None:
    tree = readme_tree()
    named_files = set(re.findall(r"\b(\w+\.py)\b", tree))
    existing = {path.name for path in SOURCE.rglob("*.py")}
    assert named_files <= existing, f"the tree names missing files: {named_files - existing}"
    for line in tree.split("\n")[1:]:
        for folder in re.findall(r"(?:^|\s)(\w+)/(?=\s|$)", line):
            base = SOURCE if line.startswith(" ") else ROOT
            assert (base / folder).is_dir(), f"the tree names a missing folder: {folder}/"
    top_level = {p.name for p in SOURCE.iterdir() if p.suffix == ".py" or p.is_dir()}
    top_level -= {"__init__.py", "__pycache__"}
    unnamed = {n for n in top_level if not re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", tree)}
    assert not unnamed, f"src/relight has what the README's tree does not name: {unnamed}"


def test_conf_tree_names_every_option() -> None:
    top, sections = conf_tree()
    for name in top.split():
        assert (ROOT / "conf" / name).is_file(), f"conf tree: no conf/{name}"
    groups = {p.name for p in (ROOT / "conf").iterdir() if p.is_dir()}
    assert set(sections) == groups, f"conf tree groups {sorted(sections)} != {sorted(groups)}"
    for group, text in sections.items():
        options = {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")}
        listed = set(re.findall(r"\b[a-z][a-z0-9]*_\w*\b", re.sub(r"\([^)]*\)", "", text)))
        assert listed <= options, f"conf tree, {group}/: no options {listed - options}"
        if group not in GROUPS_NAMED_ONLY:
            unlisted = {o for o in options if not re.search(rf"\b{o}\b", text)}
            assert not unlisted, f"conf tree, {group}/: options not named {unlisted}"


def test_the_docs_show_enough_to_check() -> None:
    """The extraction finds the docs' examples (a parser change cannot empty the tests)."""
    assert len(LINKS) >= 10
    assert len(HYDRA_COMMANDS) >= 10
    assert len(INLINE_OVERRIDES) >= 20
    assert len(ARGPARSE_COMMANDS) >= 8
    assert len(INLINE_FLAGS) >= 30
    assert {"my_exps/experiment/foo.yaml", "my_terms.py"} <= set(shown_files(PAGES))


STALE_PAGE = """\
# Stale

[a missing page](nowhere.md), [a missing heading](#nowhere), [fine](#stale)

```bash
relight-train model=s3net_no_attention
relight-train -m ablation=full,no_such_ablation
relight-train --config-dir my_exps experiment=foo
relight-predict --input a.png --guide b.png --checkpoint c.ckpt --output out.jpg
relight-data check DIR --workers -1
make no-such-target
```

`model.net.atention=false`, `relight-predict --precision fp16`, `--no-such-flag`,
`relight.metrics.PSNR`, `src/relight/inference.py`, `data.imag_size=64`.
"""


def test_every_check_catches_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Each check fails on a page with stale examples (and passes what is right there)."""
    page = tmp_path / "stale.md"
    page.write_text(STALE_PAGE)
    failed = (AssertionError, pytest.fail.Exception)
    missing, anchor, fine = links([page])
    for link in (missing, anchor):
        with pytest.raises(failed):
            check_link(link)
    check_link(fine)
    stale_model, stale_sweep, no_config_dir = command_lines([page], HYDRA_APPS, inline=True)
    with pytest.raises(failed, match="s3net_no_attention"):
        check_hydra_command(stale_model, [page], tmp_path / "a")
    with pytest.raises(failed, match="no_such_ablation"):
        check_hydra_command(stale_sweep, [page], tmp_path / "b")
    with pytest.raises(failed, match="my_exps"):  # this page shows no my_exps/ files
        check_hydra_command(no_config_dir, [page], tmp_path / "c")
    typo, documented_error = inline_overrides([page])
    with pytest.raises(failed, match="atention"):
        check_override(typo)
    check_override(documented_error)
    wrong_output, bad_workers = command_lines([page], ARGPARSE_APPS, inline=False)
    with pytest.raises(failed, match=r"\.png"):
        check_argparse_command(wrong_output, capsys)
    with pytest.raises(failed, match="--workers"):
        check_argparse_command(bad_workers, capsys)
    bad_choice, no_flag = inline_flags([page])
    with pytest.raises(failed, match="fp16"):
        check_inline_flags(bad_choice)
    with pytest.raises(failed, match="--no-such-flag"):
        check_inline_flags(no_flag)
    assert [m.text for m in make_mentions([page])] == ["no-such-target"]
    assert "no-such-target" not in make_targets()
    (gone,) = python_names([page])
    with pytest.raises(failed, match="PSNR"):
        check_python_name(gone)
    (old_path,) = repository_paths([page])
    assert not (ROOT / old_path.text).exists()
