"""Prints the pip requirements given as arguments that this Python does not satisfy yet.

    python ci/pip-missing.py "pytest" "grpcio==1.85.3" -r tests/interop/requirements.txt
    python ci/pip-missing.py --extra python/pyproject.toml dubbo   # what an extra needs

One requirement per output line, as given (ready for `pip install`); nothing when all are
met. It reads installed versions with importlib.metadata and compares them with pip's own
`packaging`, so it needs no network and takes a fraction of a second.
"""

from __future__ import annotations

import sys
from importlib import metadata

try:
    from packaging.requirements import Requirement
except ImportError:  # a fresh venv has pip's vendored copy only
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]
if sys.version_info >= (3, 11):
    import tomllib
else:  # pip vendors a copy of what became tomllib
    from pip._vendor import tomli as tomllib


def extra_requirements(pyproject: str, extra: str) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    found: list[str] = project["optional-dependencies"][extra]
    return found


def requirements(args: list[str]) -> list[str]:
    out: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "-r":
            with open(next(it), encoding="utf-8") as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if line:
                        out.append(line)
        elif arg == "--extra":
            out.extend(extra_requirements(next(it), next(it)))
        else:
            out.append(arg)
    return out


def satisfied(text: str) -> bool:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        return True
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(version, prereleases=True)


def main() -> None:
    for text in requirements(sys.argv[1:]):
        if not satisfied(text):
            print(text)


if __name__ == "__main__":
    main()
