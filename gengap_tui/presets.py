"""Find, list, load and save presets.

A preset is named (`default`, `label-noise`) or given as a path to a TOML file. Names are looked
up in the user's preset folder (`$GENGAP_PRESETS_DIR`, else `~/.config/gengap-tui/presets`) and
then among the presets packaged with gengap-tui (the repository's top-level `presets/`). A name is letters, digits, `-` and `_` only, so it
can never reach outside those folders; a path is the user's explicit choice.
"""

from __future__ import annotations

import os
import re
import importlib.util
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, build, read_toml, to_toml

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # \Z: no trailing newline either


SOURCE_DIR = Path(__file__).resolve().parent.parent / "presets"  # a checkout run without installing


def packaged_dir() -> Path:
    """The presets that come with gengap-tui: the repository's top-level `presets/`, installed
    (wheel or editable) as the package data of `gengap_tui.preset_files` (pyproject.toml)."""
    try:  # a namespace package (no __init__.py): its folder, not importlib.resources' multiplexed view
        spec = importlib.util.find_spec("gengap_tui.preset_files")
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return SOURCE_DIR
    return Path(list(spec.submodule_search_locations)[0])


def user_dir() -> Path:
    env = os.environ.get("GENGAP_PRESETS_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gengap-tui" / "presets"


def packaged_names() -> set[str]:
    d = packaged_dir()
    return {p.stem for p in d.glob("*.toml")} if d.is_dir() else set()


def _is_path(ref: str) -> bool:
    return ref.endswith(".toml") or "/" in ref or os.sep in ref


def available() -> dict[str, Path]:
    """name -> file, user presets shadowing packaged ones."""
    found: dict[str, Path] = {}
    for d in (packaged_dir(), user_dir()):
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                if NAME_RE.match(p.stem):
                    found[p.stem] = p
    return dict(sorted(found.items()))


def resolve(ref: str) -> Path:
    if _is_path(ref):
        shown = ref if len(ref) <= 200 else ref[:197] + "..."
        try:
            p = Path(ref).expanduser()
            found = p.is_file()
        except (RuntimeError, ValueError, OSError) as exc:  # unknown ~user, NUL byte, name too long
            raise ConfigError([f"preset file {shown!r}: not a usable path ({exc})"], shown) from None
        if not found:
            raise ConfigError([f"preset file {shown!r} does not exist"], shown)
        return p
    if not NAME_RE.match(ref):
        ref = ref if len(ref) <= 80 else ref[:77] + "..."
        raise ConfigError([f"preset {ref!r}: a preset name is letters, digits, '-' and '_' "
                           "(or give a path to a .toml file)"], ref)
    names = available()
    if ref not in names:
        raise ConfigError([f"unknown preset {ref!r} (available: {', '.join(names)}; "
                           "or give a path to a .toml file)"], ref)
    return names[ref]


def load_raw(ref: str) -> dict[str, Any]:
    path = resolve(ref)
    raw = read_toml(path)
    raw.setdefault("name", path.stem if NAME_RE.match(path.stem) else "custom")
    return raw


def load(ref: str, overrides: list[str] | None = None) -> Config:
    """Load and validate a preset (name or path) with `--set` overrides."""
    path = resolve(ref)
    raw = load_raw(ref)
    return build(raw, overrides, source=str(path))


def describe(path: Path) -> str:
    try:
        raw = read_toml(path)
    except ConfigError:
        return "(unreadable preset)"
    desc = str(raw.get("description", "")).strip()
    return desc.splitlines()[0] if desc else ""


def save(cfg: Config, dest: str | None = None) -> Path:
    """Write `cfg` as a preset TOML: to `dest` (a path) or into the user preset folder as
    `<cfg.name>.toml`."""
    if dest and _is_path(dest):
        path = Path(dest).expanduser()
    else:
        name = dest or cfg.name
        if not NAME_RE.match(name):
            raise ConfigError([f"preset name {name!r}: use letters, digits, '-' and '_'"])
        path = user_dir() / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(cfg), encoding="utf-8")
    return path
