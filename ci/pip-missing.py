"""Prints the pip requirements given as arguments that this Python does not satisfy yet.

    python ci/pip-missing.py "pytest" "grpcio==1.85.3" -r tests/interop/requirements.txt
    python ci/pip-missing.py "dubbo-health[dubbo]"     # also the dependencies of an extra

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
        else:
            out.append(arg)
    return out


def satisfied(text: str) -> bool:
    """Installed at a matching version, and so are its dependencies for the extras asked."""
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        return True
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    if not req.specifier.contains(version, prereleases=True):
        return False
    for extra in req.extras:
        for dep_text in metadata.requires(req.name) or []:
            dep = Requirement(dep_text)
            if dep.marker is None or not dep.marker.evaluate({"extra": extra}):
                continue  # not of this extra (the base dependencies pip checked already)
            dep.marker = None
            if not satisfied(str(dep)):
                return False
    return True


def main() -> None:
    for text in requirements(sys.argv[1:]):
        if not satisfied(text):
            print(text)


if __name__ == "__main__":
    main()
