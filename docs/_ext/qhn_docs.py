"""Reference pages generated from the code at build time, so they cannot drift from it.

``.. qhn-cli::`` walks the typer app (``typer.main.get_command``): one section per command with
its usage, help and every option (flags, type, default, help). ``.. qhn-config::`` tables every
run-config key (``qhn.experiments.config_docs.config_keys``: key, type, default, meaning), one
table per group; a field without a meaning is an error, which ``-W`` turns into a failed build.
"""

from __future__ import annotations

import re
from dataclasses import MISSING
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive


def _inline(text: str) -> list[nodes.Node]:
    """Text with ``code`` spans (single or double backticks) as literal nodes."""
    parts = re.split(r"``?([^`]+)``?", text)
    out: list[nodes.Node] = []
    for i, part in enumerate(parts):
        if not part:
            continue
        out.append(nodes.literal(part, part) if i % 2 else nodes.Text(part))
    return out


def _paragraphs(text: str) -> list[nodes.Node]:
    blocks = [" ".join(b.split()) for b in re.split(r"\n\s*\n", text or "") if b.strip()]
    return [nodes.paragraph("", "", *_inline(b)) for b in blocks]


def _table(
    headers: list[str], rows: list[list[list[nodes.Node]]], widths: list[int]
) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for header in headers:
        row += nodes.entry("", nodes.paragraph(text=header))
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            row += nodes.entry("", nodes.paragraph("", "", *cell))
        body += row
    return table


# --- the CLI ----------------------------------------------------------------------------------


def _default(param: Any) -> str:
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str):
        return shown
    if _is_flag(param) and param.secondary_opts:
        return param.opts[0] if param.default else param.secondary_opts[0]
    if param.default is None or _is_flag(param):
        return ""
    if isinstance(param.default, (list, tuple)) and not param.default:
        return ""
    return str(param.default)


def _is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False))


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _type_name(param: Any) -> str:
    """The parameter's Python type (typer keeps its annotation), else click's type name."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if isinstance(annotation, type):
        return annotation.__name__
    if annotation is not None:
        return str(annotation)
    return getattr(getattr(param, "type", None), "name", "") or "text"


def _param_rows(command: Any, ctx: Any) -> list[list[list[nodes.Node]]]:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        names = ", ".join(param.opts + param.secondary_opts)
        if _is_argument(param):
            names = (param.metavar or param.name or "").upper()
        kind = "flag" if _is_flag(param) else _type_name(param)
        default = _default(param)
        required = " (required)" if param.required else ""
        rows.append(
            [
                [nodes.literal(names, names)],
                [nodes.Text(f"{kind}{required}")],
                [nodes.literal(default, default)] if default else [nodes.Text("")],
                _inline(getattr(param, "help", None) or ""),
            ]
        )
    return rows


def _subcommands(command: Any, ctx: Any) -> list[tuple[str, Any, Any]]:
    """``(name, command, context)`` of each visible subcommand of a group (none otherwise)."""
    if not hasattr(command, "list_commands"):
        return []
    out = []
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            out.append((name, sub, sub.context_class(sub, info_name=name, parent=ctx)))
    return out


def _command_section(command: Any, ctx: Any, path: list[str]) -> nodes.section:
    title = " ".join(path)
    section = nodes.section(ids=[nodes.make_id("cli-" + "-".join(path))])
    section += nodes.title(title, title)
    usage = command.get_usage(ctx).replace("Usage: ", "", 1)
    section += nodes.literal_block(usage, usage)
    section.extend(_paragraphs(command.help or ""))
    rows = _param_rows(command, ctx)
    if rows:
        section += _table(["option", "type", "default", "help"], rows, [22, 10, 12, 56])
    for name, sub, sub_ctx in _subcommands(command, ctx):
        section += _command_section(sub, sub_ctx, [*path, name])
    return section


class CliDirective(Directive):
    """``.. qhn-cli::`` — the reference of the ``qhn`` command, from its typer app."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import typer.main

        from qhn.cli import app

        root = typer.main.get_command(app)
        ctx = root.context_class(root, info_name="qhn")
        nodes_out: list[nodes.Node] = []
        rows = _param_rows(root, ctx)
        nodes_out.append(
            nodes.literal_block("qhn [OPTIONS] COMMAND [ARGS]...", "qhn [OPTIONS] COMMAND ...")
        )
        nodes_out.append(_table(["option", "type", "default", "help"], rows, [22, 10, 12, 56]))
        for name, command, sub_ctx in _subcommands(root, ctx):
            nodes_out.append(_command_section(command, sub_ctx, ["qhn", name]))
        return nodes_out


# --- the run config ---------------------------------------------------------------------------


def _shown_default(value: Any) -> str:
    from qhn.experiments.toml_format import toml_value

    if value is MISSING:
        return "required"
    if value is None:
        return "unset"
    return toml_value(value)


class ConfigDirective(Directive):
    """``.. qhn-config::`` — every run-config key with its type, default and meaning."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from qhn.experiments.config_docs import config_keys

        try:
            keys = config_keys()
        except KeyError as error:
            return [self.state_machine.reporter.error(str(error), line=self.lineno)]
        groups: dict[str, list[Any]] = {}
        for key in keys:
            groups.setdefault(key.group, []).append(key)
        out: list[nodes.Node] = []
        for group, members in groups.items():
            section = nodes.section(ids=[nodes.make_id("config-" + group)])
            section += nodes.title(group, group)
            rows = [
                [
                    [nodes.literal(k.key, k.key)],
                    [nodes.literal(k.type, k.type)],
                    [nodes.literal(d, d) for d in [_shown_default(k.default)]],
                    _inline(k.doc),
                ]
                for k in members
            ]
            section += _table(["key", "type", "default", "meaning"], rows, [20, 14, 14, 52])
            out.append(section)
        return out


def _skip_member(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> Any:
    # scikit-learn generates set_*_request methods on every estimator; they are its API, not ours.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-skip-member", _skip_member)
    app.add_directive("qhn-cli", CliDirective)
    app.add_directive("qhn-config", ConfigDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
