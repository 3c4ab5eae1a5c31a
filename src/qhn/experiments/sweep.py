"""Sweeps: a grid of run configurations in one TOML file, expanded into points with stable ids.

A ``sweep.toml`` has a ``[base]`` run (a :class:`~qhn.experiments.RunConfig` in its TOML form:
run fields, ``[base.task_options]``, ``[base.train]``) and a ``[grid]`` whose keys are override
keys as :func:`~qhn.experiments.apply_overrides` accepts them (``objective``, ``layers``,
``train.seed``, ``task_options.n_train``, …), each with an array of values. The grid's points are
the Cartesian product of those arrays, in file order, the last key varying fastest:

.. code-block:: toml

    seeds = 5                        # shorthand for train.seed = [0, 1, 2, 3, 4] (innermost)

    [base]
    task = "teacher-tiny"
    [base.task_options]
    n_train = 200
    [base.train]
    steps = 300
    lr = 0.05

    [grid]
    objective = ["mle", "elbo", "selbo"]
    layers = [0, 1, 2]

    [[exclude]]                      # drop grid points matching every key of a pattern
    objective = "elbo"
    layers = [0, 1]                  # an array matches any of its values

    [[include]]                      # an extra point, run with each seed of the grid
                                     # unless it sets train.seed itself
    objective = "selbo"
    layers = 2
    beta = 0.5

Groups combine grids that need different settings, e.g. exact runs and sample-only runs:

.. code-block:: toml

    seeds = 10
    [base]
    task = "digits01"

    [grid]                           # shared: merged into every group's grid
    layers = [0, 1, 2]

    [[group]]
    name = "exact"
    [group.grid]
    objective = ["mle", "elbo", "selbo"]

    [[group]]
    name = "samples"
    [group.base]                     # merged over the top-level [base]
    backend = "sampled"
    shots = 1000
    [group.grid]
    objective = ["mle", "selbo"]

Rules. With ``[[group]]`` blocks, the top-level ``[base]``, ``[grid]``, ``[[exclude]]`` and
``seeds`` are shared by every group (a group's own ``base`` and ``grid`` keys win; its own
``exclude`` patterns add to the shared ones; its own ``seeds`` replaces the shared one), and
``[[include]]`` belongs inside a group. Excludes match the values a point would run with (given
or default; ``"none"`` matches an unset optional field), before validation, so they can remove
invalid combinations; they never drop ``[[include]]`` points. ``seeds`` and a grid over
``train.seed`` cannot be combined. Points whose configurations are equal are run once.

Baselines are points too: ``method`` (``"qhn"``, the default, or a baseline name) is a key like
any other, and a baseline's own options are ``baseline.<option>`` keys. A QHN point refuses
baseline options, so give them in the group that runs the baselines:

.. code-block:: toml

    [[group]]
    name = "baselines"
    [group.base.baseline]
    budget = 19200                   # = the QHN's evaluations: steps · 2^n for exact Adam runs
    [group.grid]
    method = ["anneal", "random"]

Every point's configuration is validated by :func:`expand` (a :class:`ConfigError` names the
point) before anything runs. A point's id is
``{task}-{objective}-L{layers}-s{seed}-{config_hash[:8]}``: it depends on that point's
configuration and, for tasks read from a file (``task_options.path``: ``csv``, ``cost-vector``),
the bytes of that file, so the same file always gives the same ids in the same order, adding a
value to the grid leaves the other points' ids unchanged, and editing a data file gives new ids
(new runs) instead of silently counting the old results as complete. A relative
``task_options.path`` is relative to the sweep file (to the working directory for a sweep given
as text) and stored absolute in every point's configuration.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from qhn.errors import ConfigError, choices
from qhn.experiments.config import RunConfig
from qhn.experiments.ids import PATH_KEY, data_digest, point_id
from qhn.experiments.overrides import apply_overrides
from qhn.experiments.toml_format import toml_value
from qhn.train.loop import TrainConfig, check_int

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "GroupSpec",
    "SweepPoint",
    "SweepSpec",
    "check_tasks",
    "data_digest",
    "expand",
    "load_sweep",
    "loads_sweep",
    "normalize_key",
    "point_id",
]

_TOP_KEYS = ("base", "exclude", "grid", "group", "include", "seeds")
_GROUP_KEYS = ("base", "exclude", "grid", "include", "name", "seeds")
_SEED_KEY = "train.seed"
_UNSET = object()


@dataclass(frozen=True)
class GroupSpec:
    """One grid of a sweep, with the shared settings already merged in.

    ``base``: overrides applied to every point (key → value, keys normalized as in
    :func:`normalize_key`); ``grid``: key → values, in file order; ``includes``: extra points,
    each a key → value table; ``excludes``: patterns (key → value or array of values).
    """

    name: str
    base: tuple[tuple[str, Any], ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    includes: tuple[tuple[tuple[str, Any], ...], ...]
    excludes: tuple[tuple[tuple[str, Any], ...], ...]


@dataclass(frozen=True)
class SweepSpec:
    """A parsed ``sweep.toml``: its text (copied into the sweep directory), its groups and the
    directory relative data paths are read from (the sweep file's; None: the working directory)."""

    text: str
    groups: tuple[GroupSpec, ...]
    source: str = "<string>"
    base_dir: str | None = None


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its stable ``id``, validated ``config``, the ``group`` it came from
    and the ``overrides`` (``key=value`` strings beyond the base) that define it."""

    id: str
    config: RunConfig
    group: str
    overrides: tuple[str, ...]
    index: int


# --- parsing ----------------------------------------------------------------------------------


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read a sweep file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"sweep file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"sweep file {path} is not UTF-8 text (byte {error.start}: {error.reason}); "
            "give a sweep.toml"
        ) from None
    return loads_sweep(text, source=str(path), base_dir=path.resolve().parent)


def loads_sweep(
    text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> SweepSpec:
    """Parse sweep TOML text; errors name ``source`` and the bad key. ``base_dir``: where a
    relative ``task_options.path`` points from (default: the working directory at expansion)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source} is not valid TOML: {error}") from None
    try:
        groups = _parse_groups(data)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    base = None if base_dir is None else str(base_dir)
    return SweepSpec(text=text, groups=groups, source=source, base_dir=base)


def _parse_groups(data: dict[str, Any]) -> tuple[GroupSpec, ...]:
    _check_keys(data, _TOP_KEYS, "at the top level of a sweep file")
    base = _flatten_base(_table(data.get("base", {}), "[base]"), "[base]")
    grid = _grid(_table(data.get("grid", {}), "[grid]"), "[grid]")
    excludes = _patterns(data.get("exclude", []), "[[exclude]]", check_keys=True)
    seeds = data.get("seeds")
    raw_groups = data.get("group")
    if raw_groups is None:
        includes = _patterns(data.get("include", []), "[[include]]")
        return (_group("main", base, grid, includes, excludes, seeds, "the sweep"),)
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ConfigError("group must be a non-empty array of tables ([[group]] blocks)")
    if "include" in data:
        raise ConfigError(
            "[[include]] at the top level cannot be combined with [[group]] blocks: "
            "put each extra point inside the group it belongs to ([[group.include]])"
        )
    groups = []
    names: set[str] = set()
    for i, raw in enumerate(raw_groups):
        where = f"[[group]] #{i + 1}"
        raw = _table(raw, where)
        _check_keys(raw, _GROUP_KEYS, f"in {where}")
        name = raw.get("name", f"group{i + 1}")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: name must be a non-empty string, got {name!r}")
        if name in names:
            raise ConfigError(f"{where}: group name {name!r} is used twice")
        names.add(name)
        where = f"group {name!r}"
        group_base = _merge(base, _flatten_base(_table(raw.get("base", {}), where), where))
        group_grid = dict(grid)  # a shared key keeps its place; the group's value wins
        group_grid.update(_grid(_table(raw.get("grid", {}), where), f"{where} grid"))
        groups.append(
            _group(
                name,
                tuple(group_base.items()),
                tuple(group_grid.items()),
                _patterns(raw.get("include", []), f"{where} include"),
                excludes + _patterns(raw.get("exclude", []), f"{where} exclude", check_keys=True),
                raw.get("seeds", seeds),
                where,
            )
        )
    return tuple(groups)


def _group(
    name: str,
    base: Iterable[tuple[str, Any]],
    grid: Iterable[tuple[str, tuple[Any, ...]]],
    includes: tuple[tuple[tuple[str, Any], ...], ...],
    excludes: tuple[tuple[tuple[str, Any], ...], ...],
    seeds: object,
    where: str,
) -> GroupSpec:
    base, grid = tuple(base), tuple(grid)
    if seeds is not None:
        if any(key == _SEED_KEY for key, _ in grid):
            raise ConfigError(
                f"{where}: seeds = {seeds!r} and a grid over train.seed both set the seeds; "
                "keep one"
            )
        grid = (*grid, (_SEED_KEY, _seed_values(seeds, where)))
    return GroupSpec(name, base, grid, includes, excludes)


def _seed_values(seeds: object, where: str) -> tuple[int, ...]:
    if isinstance(seeds, list):
        if not seeds:
            raise ConfigError(f"{where}: seeds must not be an empty array")
        return tuple(check_int(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds))
    return tuple(range(check_int("seeds", seeds, 1)))


def _check_keys(table: Mapping[str, Any], valid: Iterable[str], where: str) -> None:
    for key in table:
        if key not in valid:
            raise ConfigError(f"unknown key {key!r} {where}; valid keys: {choices(valid)}")


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table, got {value!r}")
    return value


def normalize_key(key: str) -> str:
    """The canonical spelling of an override key: training fields as ``train.<name>``."""
    key = key.strip()
    if "." not in key and key in _train_fields():
        return f"train.{key}"
    return key


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Nested tables (TOML dotted keys) as dotted keys; arrays and scalars are leaves."""
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path.split(".")[0] in ("train", "task_options", "baseline"):
            if path == "task_options" and not value:
                yield path, value
            yield from _flatten(value, f"{path}.")
        else:
            yield path, value


def _flatten_base(table: Mapping[str, Any], where: str) -> tuple[tuple[str, Any], ...]:
    seen: dict[str, Any] = {}
    for key, value in _flatten(table):
        key = normalize_key(key)
        if key in seen:
            raise ConfigError(f"{where}: {key} is given twice; keep one")
        seen[key] = value
    return tuple(seen.items())


def _grid(table: Mapping[str, Any], where: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    out: dict[str, tuple[Any, ...]] = {}
    for key, values in _flatten(table):
        key = normalize_key(key)
        if key in out:
            raise ConfigError(f"{where}: {key} is given twice; keep one")
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}: {key} must be a non-empty array of values, got {values!r} "
                f"(write {key} = [{_literal(values)}] for a single value)"
            )
        out[key] = tuple(values)
    return tuple(out.items())


def _patterns(
    raw: object, where: str, *, check_keys: bool = False
) -> tuple[tuple[tuple[str, Any], ...], ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be an array of tables, got {raw!r}")
    out = []
    for i, entry in enumerate(raw):
        entry = _table(entry, f"{where} #{i + 1}")
        if not entry:
            raise ConfigError(f"{where} #{i + 1} is empty; give at least one key = value")
        pattern = _flatten_base(entry, f"{where} #{i + 1}")
        if check_keys:
            for key, _ in pattern:
                _effective({}, key)  # raises on a key no point can have
        out.append(pattern)
    return tuple(out)


# --- expansion --------------------------------------------------------------------------------


def expand(spec: SweepSpec, *, check_task: bool = True) -> list[SweepPoint]:
    """Every point of ``spec``, validated, in file order (groups, then grid points with the last
    key fastest, then includes), duplicates (equal configurations) removed.

    Raises :class:`ConfigError` naming the first invalid point; nothing has run by then.
    ``check_task``: also check task names and options against the registry.
    """
    points: list[SweepPoint] = []
    seen: dict[str, RunConfig] = {}
    for group in spec.groups:
        for values, label in _group_points(group):
            where = f"{spec.source}: point ({label})"
            config = _build(_absolute_paths(values, spec.base_dir), check_task, where)
            pid = point_id(config)
            if pid in seen:
                if seen[pid] != config:  # pragma: no cover - needs a 32-bit hash collision
                    raise ConfigError(f"two different configurations share the id {pid}")
                continue
            seen[pid] = config
            overrides = tuple(
                f"{key}={_literal(value)}"
                for key, value in values.items()
                if (key, value) not in group.base
            )
            points.append(SweepPoint(pid, config, group.name, overrides, len(points)))
    return points


def _group_points(group: GroupSpec) -> Iterable[tuple[dict[str, Any], str]]:
    keys = [key for key, _ in group.grid]
    label_prefix = f"group {group.name!r}: " if group.name != "main" else ""
    for combination in itertools.product(*(values for _, values in group.grid)):
        point = dict(zip(keys, combination, strict=True))
        values = _merge(group.base, point.items())
        if any(_matches(values, pattern) for pattern in group.excludes):
            continue
        yield values, label_prefix + _describe(point)
    seeds = dict(group.grid).get(_SEED_KEY, ())
    for i, include in enumerate(group.includes):
        extra = dict(include)
        crossed = seeds if (_SEED_KEY not in extra and seeds) else (_UNSET,)
        for seed in crossed:
            point = extra if seed is _UNSET else {**extra, _SEED_KEY: seed}
            label = f"{label_prefix}include #{i + 1}: {_describe(point)}"
            yield _merge(group.base, point.items()), label


def _merge(*layers: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer:
            merged.pop(key, None)  # a later value moves to the end: whole tables apply in order
            merged[key] = value
    return merged


def _absolute_paths(values: Mapping[str, Any], base_dir: str | None) -> dict[str, Any]:
    """``values`` with a relative ``task_options.path`` made absolute from ``base_dir``."""
    out = dict(values)
    for key, value in values.items():
        if key == PATH_KEY and isinstance(value, str) and value.strip():
            path = Path(value).expanduser()
            if not path.is_absolute():
                path = Path(base_dir or os.getcwd()) / path
            out[key] = str(path.resolve())
    return out


def _describe(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_literal(value)}" for key, value in point.items()) or "base"


def _literal(value: Any) -> str:
    return toml_value(value)


def _build(values: Mapping[str, Any], check_task: bool, where: str) -> RunConfig:
    task = values.get("task")
    try:
        if task is None:
            raise ConfigError(
                'task is required: set it in [base] (task = "teacher") or in the grid'
            )
        if not isinstance(task, str):
            raise ConfigError(f"task must be a task name, got {task!r}")
        overrides = [f"{key}={_literal(value)}" for key, value in values.items()]
        return apply_overrides(RunConfig(task=task), overrides, check_task=check_task)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _matches(values: Mapping[str, Any], pattern: Iterable[tuple[str, Any]]) -> bool:
    """Whether a point (its merged overrides, defaults filling the rest) matches every key."""
    for key, wanted in pattern:
        value = _effective(values, key)
        if not _value_matches(value, wanted):
            return False
    return True


def _effective(values: Mapping[str, Any], key: str) -> Any:
    if key in values:
        return values[key]
    head, _, rest = key.partition(".")
    if head in ("task_options", "baseline") and rest:
        table = values.get(head, {})
        for part in rest.split("."):
            if not isinstance(table, dict) or part not in table:
                return _UNSET
            table = table[part]
        return table
    if head == "train" and rest:
        return _default(TrainConfig, rest, key)
    return _default(RunConfig, key, key)


def _default(cls: type, name: str, key: str) -> Any:
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            return _UNSET
    valid = [f.name for f in fields(RunConfig) if f.name != "train"]
    valid += [f"train.{f.name}" for f in fields(TrainConfig)] + ["task_options.<option>"]
    raise ConfigError(f"unknown key {key!r} in an exclude pattern; valid keys: {choices(valid)}")


def _value_matches(value: Any, wanted: Any) -> bool:
    if value is _UNSET:
        return False
    value = _plain(value)
    if value is None:
        return isinstance(wanted, str) and wanted.lower() in ("none", "null")
    if _plain(wanted) == value:
        return True
    return isinstance(wanted, list) and any(_value_matches(value, w) for w in wanted)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _train_fields() -> set[str]:
    return {f.name for f in fields(TrainConfig)}


def check_tasks(points: Iterable[SweepPoint]) -> None:
    """Build each distinct task of ``points`` once (data files read, options converted) and
    check that exact points fit the enumeration limit, so a bad task fails before any run.

    Raises :class:`ConfigError` naming the first point whose task cannot be built.
    """
    from qhn.data.tasks import get_task
    from qhn.errors import QHNError
    from qhn.experiments.runner import MAX_EXACT_BITS

    built: dict[str, int] = {}
    for point in points:
        config = point.config
        key = repr((config.task, config.data_seed, sorted(config.task_options.items())))
        try:
            if key not in built:
                task = get_task(config.task, seed=config.data_seed, **config.task_options)
                built[key] = task.n_bits
            if config.shots is None and config.method is None and built[key] > MAX_EXACT_BITS:
                raise ConfigError(
                    f"task {config.task!r} has {built[key]} bits; exact training stops at "
                    f"{MAX_EXACT_BITS} bits: set shots = <int> to train from samples"
                )
        except (QHNError, OSError) as error:
            raise ConfigError(f"point {point.id}: {error}") from None
