"""The command reference, docs/cli.md, rendered from the click command tree itself.

Every command and subcommand with its usage line, its help text, its arguments and every option
(value type, default, environment variable, help). Regenerate after changing the CLI::

    .venv/bin/python -m nhdev.cli.reference > docs/cli.md

``tests/unit/test_docs.py`` renders it again and fails, naming that command, when the checked-in
file differs. Hidden commands and options are left out.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

REGENERATE = ".venv/bin/python -m nhdev.cli.reference > docs/cli.md"
PROG = "nhdev"


@dataclass(frozen=True)
class Entry:
    """One command of the tree, with the click context it is rendered in."""

    path: tuple[str, ...]
    command: click.Command
    ctx: click.Context

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9 -]", "", self.name.lower()).replace(" ", "-")


def walk(root: click.Command, prog: str = PROG) -> Iterator[Entry]:
    """Every visible command, depth first, subcommands in the order ``--help`` lists them."""
    ctx = click.Context(root, info_name=prog)
    yield from _walk(root, (prog,), ctx)


def _walk(command: click.Command, path: tuple[str, ...], ctx: click.Context) -> Iterator[Entry]:
    yield Entry(path, command, ctx)
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from _walk(sub, (*path, name), click.Context(sub, info_name=name, parent=ctx))


def render(root: click.Command | None = None) -> str:
    """docs/cli.md, as Markdown."""
    if root is None:
        from nhdev.cli.root import cli

        root = cli
    entries = list(walk(root))
    out = [
        "# nhdev command reference",
        "",
        f"<!-- Generated from the CLI by `{REGENERATE}`. Do not edit: change the help texts in",
        "     nhdev/cli/ and regenerate; tests/unit/test_docs.py fails while this file is stale. -->",
        "",
        "Every command takes `-h` / `--help`. Commands that talk to a cluster resolve the kubeconfig,",
        "context and namespace as kubectl does (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`;",
        "`--context`; `-n`). With `-o json` a command prints one JSON document on stdout and its",
        "progress on stderr. Exit codes: 0 success, 1 a runtime failure (cluster, timeout, conflict),",
        "2 a usage or config error.",
        "",
    ]
    for entry in entries:
        indent = "  " * (len(entry.path) - 1)
        summary = _short_help(entry.command)
        out.append(f"{indent}- [`{entry.name}`](#{entry.anchor})" + (f": {summary}" if summary else ""))
    for entry in entries:
        out += ["", *_section(entry)]
        while out[-1] == "":
            out.pop()
    return "\n".join(out) + "\n"


def _section(entry: Entry) -> list[str]:
    command, ctx = entry.command, entry.ctx
    lines = [f"## {entry.name}", ""]
    usage = " ".join([entry.name, *command.collect_usage_pieces(ctx)])
    lines += ["```", usage, "```", ""]
    text = _help_text(command)
    if text:
        lines += [text, ""]
    if isinstance(command, click.Group):
        subs = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
        rows = [f"| [`{name}`](#{entry.anchor}-{name}) | {_cell(_short_help(sub))} |"
                for name, sub in subs if sub is not None and not sub.hidden]
        if rows:
            lines += ["| Command | What it does |", "|---|---|", *rows, ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if arguments:
        given = ", ".join(f"`{_argument_name(a)}`" + (f" ({note})" if (note := _argument_note(a)) else "")
                          for a in arguments)
        lines += [f"Arguments: {given}.", ""]
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if options:
        lines += ["| Option | Value | Default | What it does |", "|---|---|---|---|"]
        lines += [_option_row(o, ctx) for o in options]
        lines.append("")
    return lines


def _help_text(command: click.Command) -> str:
    raw = inspect.cleandoc(command.help or "")
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", raw):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if paragraph.startswith("\b"):  # click's "do not rewrap": keep the lines as they are
            body = paragraph.lstrip("\b").strip("\n")
            paragraphs.append("```\n" + body + "\n```")
        else:
            paragraphs.append(_escape(" ".join(line.strip() for line in paragraph.splitlines())))
    return "\n\n".join(paragraphs)


def _short_help(command: click.Command) -> str:
    text = command.short_help or _help_text(command).split("\n\n", 1)[0]
    return _escape(text.replace("\n", " ").strip()) if not text.startswith("```") else ""


def _argument_name(argument: click.Argument) -> str:
    name = (argument.metavar or argument.name or "").upper()
    return name + ("..." if argument.nargs == -1 and not name.endswith("...") else "")


def _argument_note(argument: click.Argument) -> str:
    if argument.metavar and " " in argument.metavar:  # the metavar spells it out
        return ""
    many = argument.nargs == -1
    if argument.required:
        return "required" + (", one or more" if many else "")
    return "optional" + (", any number" if many else "")


def _option_row(option: click.Option, ctx: click.Context) -> str:
    names = ", ".join(f"`{n}`" for n in [*option.opts, *option.secondary_opts])
    description = option.help or ""
    envvars = [option.envvar] if isinstance(option.envvar, str) else list(option.envvar or ())
    if envvars:
        description += (" " if description else "") + "Environment: " + ", ".join(f"`{e}`" for e in envvars) + "."
    if option.multiple:
        description += (" " if description else "") + "May be given more than once."
    default = "required" if option.required else _default(option, ctx)
    return f"| {names} | {_value(option)} | {default} | {_cell(_escape(description))} |"


def _value(option: click.Option) -> str:
    if option.is_flag and not option.secondary_opts:
        return "flag"
    if option.is_flag:
        return "flag pair"
    if option.metavar:
        return f"`{option.metavar}`"
    return _type_name(option.type)


def _type_name(kind: click.ParamType) -> str:
    if isinstance(kind, click.Choice):
        return " \\| ".join(f"`{c}`" for c in kind.choices)
    if isinstance(kind, click.IntRange | click.FloatRange):
        word = "integer" if isinstance(kind, click.IntRange) else "number"
        low, high = _number(kind.min), _number(kind.max)
        if low is not None and high is not None:
            return f"{word} {low}-{high}"
        if low is not None:
            return f"{word}, {'more than' if kind.min_open else 'at least'} {low}"
        if high is not None:
            return f"{word}, {'less than' if kind.max_open else 'at most'} {high}"
        return word
    if isinstance(kind, click.Path):
        return "directory" if not kind.file_okay else "file" if not kind.dir_okay else "path"
    return {"integer": "integer", "float": "number", "boolean": "true \\| false"}.get(kind.name, "text")


def _default(option: click.Option, ctx: click.Context) -> str:
    value = option.get_default(ctx, call=False)
    if callable(value) or _unset(value) or value in (None, (), []) or (option.is_flag and value is False):
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Path):
        return f"`{value}`"
    return f"`{_number(value)}`" if isinstance(value, float) else f"`{value}`"


def _unset(value: Any) -> bool:
    return type(value).__name__ == "Sentinel" or repr(value).endswith("UNSET")


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _escape(text: str) -> str:
    """``<`` and ``>`` outside code spans, so Markdown does not take them for HTML."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside backticks
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    """Text that may sit in a table cell: one line, pipes escaped."""
    return re.sub(r"(?<!\\)\|", r"\\|", text.replace("\n", " "))


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
