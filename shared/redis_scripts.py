"""Lua scripts kept as ``.lua`` files beside the module that runs them.

A script is read from its package's data (so an installed wheel has it), with
the shared argument checks of ``shared/lua/checks.lua`` in front, and
registered with redis-py (``EVALSHA``, falling back to ``EVAL`` once).

Two rules every script here follows, so it is correct on Redis Cluster and
fails clearly:

- every key it touches arrives in ``KEYS`` (built by :mod:`shared.keys`); no
  key name is put together inside Lua;
- its arguments are checked first, and a bad call answers
  ``redis.error_reply`` naming the script and the argument, before any write.

Widths, offsets and field names the scripts slice by come from Python as
arguments, defined once there.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

__all__ = ["lua_source", "register_script", "script_files"]

_PRELUDE = ("shared", "lua/checks.lua")


@cache
def lua_source(package: str, name: str, libraries: tuple[str, ...] = ()) -> str:
    """The source Redis runs: the shared checks, the package's ``libraries``, then the script file."""
    parts = [resources.files(_PRELUDE[0]).joinpath(_PRELUDE[1])]
    parts += [resources.files(package).joinpath(lib) for lib in (*libraries, name)]
    return "\n".join(part.read_text(encoding="utf-8") for part in parts)


def register_script(
    client: aioredis.Redis, package: str, name: str, libraries: tuple[str, ...] = ()
) -> AsyncScript:
    """Register ``name`` (a ``.lua`` file of ``package``, after its ``libraries``) on ``client``."""
    return client.register_script(lua_source(package, name, libraries))


def script_files(root: Path) -> Iterator[tuple[str, str]]:
    """(package, file name) of every script under ``root`` except the prelude: what tests lint and run."""
    for path in sorted(root.glob("*/**/*.lua")):
        relative = path.relative_to(root)
        if relative.parts[0] in ("tests", "benchmarks", ".venv") or relative.as_posix() == "shared/lua/checks.lua":
            continue
        yield ".".join(relative.parts[:-1]), relative.parts[-1]
