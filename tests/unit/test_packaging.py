"""The package says what licence it is under, and can be built with what it asks for."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def test_licence_file_is_the_apache_2_text() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    # The whole text, not a stub: all nine sections and the appendix.
    for heading in ("1. Definitions.", "4. Redistribution.", "9. Accepting Warranty or Additional Liability.",
                    "END OF TERMS AND CONDITIONS", "APPENDIX: How to apply the Apache License to your work."):
        assert heading in text


def test_build_requirement_understands_an_spdx_licence_string() -> None:
    # `license = "<SPDX expression>"` (PEP 639) needs setuptools 77; older ones reject it.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = next(Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools"))
    assert not setuptools.specifier.contains(Version("76.1")), setuptools
    assert setuptools.specifier.contains(Version("77.0.3")), setuptools
