"""Lua scripts kept as ``.lua`` files beside the module that runs them.

A script is read from its package's data (so an installed wheel has it), with
the shared argument checks of ``shared/lua/checks.lua`` in front, then the
libraries its header names (``-- uses: label_delay.lua``, files of the same
package that start with ``-- library``), and registered with redis-py
(``EVALSHA``, falling back to ``EVAL`` once).

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

import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

__all__ = ["lint", "lua_source", "register_script", "script_files"]

_PRELUDE = ("shared", "lua/checks.lua")
_USES = re.compile(r"^-- uses: (.+)$", re.MULTILINE)
LIBRARY_MARK = "-- library"


@cache
def lua_source(package: str, name: str) -> str:
    """The source Redis runs: the shared checks, the libraries the script uses, then the script."""
    body = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    libraries = [lib.strip() for found in _USES.findall(body) for lib in found.split(",")]
    parts = [resources.files(_PRELUDE[0]).joinpath(_PRELUDE[1]).read_text(encoding="utf-8")]
    parts += [resources.files(package).joinpath(lib).read_text(encoding="utf-8") for lib in libraries]
    return "\n".join([*parts, body])


def register_script(client: aioredis.Redis, package: str, name: str) -> AsyncScript:
    """Register ``name`` (a ``.lua`` file of ``package``) on ``client``."""
    return client.register_script(lua_source(package, name))


def script_files(root: Path) -> Iterator[tuple[str, str]]:
    """(package, file name) of every script of the services under ``root``: what the tests lint and run.

    Libraries (files starting with ``-- library``) and the prelude run only as part of a script.
    """
    for package in ("shared", "model_service", "monitor", "driftwatch"):
        for path in sorted((root / package).rglob("*.lua")):
            if path.read_text(encoding="utf-8").startswith(LIBRARY_MARK) or path.parent.name == "lua":
                continue
            relative = path.relative_to(root)
            yield ".".join(relative.parts[:-1]), relative.parts[-1]


def lint(root: Path, package: str, name: str) -> subprocess.CompletedProcess[str]:
    """``luacheck`` (Debian package lua-check) on a script as Redis runs it, with ``root/.luacheckrc``."""
    return subprocess.run(
        ["luacheck", "--config", str(root / ".luacheckrc"), "--formatter", "plain", "--filename", name, "-"],
        input=lua_source(package, name), capture_output=True, text=True, check=False,
    )


if __name__ == "__main__":  # python -m shared.redis_scripts: lint every script (.ci/run)
    here = Path.cwd()
    failed = [r.stdout + r.stderr for p, n in script_files(here) if (r := lint(here, p, n)).returncode]
    print("".join(failed) or "luacheck: every Redis script is clean")
    sys.exit(1 if failed else 0)
