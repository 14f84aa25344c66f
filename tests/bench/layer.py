"""The shared layer as it ships, for the cold-start measures: ``sam build``'s output, made runnable here.

``sam build`` (``make build``) writes the layer to ``.aws-sam/build/SharedLayer/python`` with
``layers/shared/Makefile``: pip's install of ``layers/shared/requirements.txt`` for arm64, the
``webhook_adapter`` package, and bytecode compiled with ``--invalidation-mode unchecked-hash``.
This machine may not be arm64: the few compiled extension modules (pydantic-core) are then
replaced in a copy by the same versions' builds for this machine, taken from the development
environment (the versions are checked to match). Everything else is byte for byte what ships.
A second copy without the ``.pyc`` files is what the layer was before it shipped bytecode.

The layer does not ship boto3: on Lambda the function imports the runtime's own, from
``/var/runtime`` after the layer on ``sys.path``, and compiled. Here the development
environment's boto3 and what it requires (botocore, s3transfer, ...) stand in for it: copied to
a scratch directory, compiled the same way, and put after the layer.

Without a ``sam build`` output (or in quick mode) the development layout stands in: the package
from ``layers/shared`` and the development site-packages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = ["BuiltLayer", "directory_bytes", "prepare_layers"]

_EXTENSION = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
_RUNTIME_SDK = "boto3"
"""What the Lambda Python runtime provides outside any layer (with what it requires)."""


@dataclass(frozen=True)
class BuiltLayer:
    """The layer variants to measure, the functions' directories, and what the layer weighs."""

    shipped: list[Path]
    """``sys.path`` entries after the function's directory, in order: the layer as built, then the runtime's boto3."""
    source_only: list[Path] | None
    """The same with the layer's ``.pyc`` files removed (the layer before it shipped bytecode), or ``None``."""
    functions: dict[str, Path]
    how: str
    size_bytes: int = 0
    source_size_bytes: int = 0
    largest: list[tuple[str, int]] = field(default_factory=list)


def directory_bytes(path: Path, *, bytecode: bool = True) -> int:
    """Bytes of every file under ``path`` (unzipped size), ``.pyc`` files left out unless ``bytecode``."""
    return sum(
        item.stat().st_size
        for item in path.rglob("*")
        if item.is_file() and not item.is_symlink() and (bytecode or item.suffix != ".pyc")
    )


def _largest(path: Path, count: int = 6) -> list[tuple[str, int]]:
    sizes = [(item.name, directory_bytes(item) if item.is_dir() else item.stat().st_size) for item in path.iterdir()]
    return sorted(sizes, key=lambda pair: -pair[1])[:count]


def _swap_extensions(layer: Path, site: Path) -> list[str]:
    """Replace extension modules built for another machine by this machine's build of the same version.

    Raises:
        RuntimeError: the development environment lacks the same version of a package to take it from.
    """
    swapped = []
    for module in sorted(layer.rglob("*.so")):
        if module.name.endswith(_EXTENSION):
            continue
        relative = module.relative_to(layer)
        top = relative.parts[0]
        built = {info.name for info in layer.glob(f"{top}-*.dist-info")}
        available = {info.name for info in site.glob(f"{top}-*.dist-info")}
        stem = module.name.split(".", 1)[0]
        replacements = list((site / relative.parent).glob(f"{stem}{_EXTENSION}"))
        if not built or built != available or len(replacements) != 1:
            raise RuntimeError(f"no build of {relative} for this machine at the version the layer pins")
        module.unlink()
        shutil.copy2(replacements[0], layer / relative.parent / replacements[0].name)
        swapped.append(f"{top} ({sorted(built)[0].removesuffix('.dist-info').split('-', 1)[1]})")
    return swapped


def _compile(path: Path) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter on our own copy
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _requirements(name: str) -> set[str]:
    """``name`` and every distribution it requires, transitively (extras left out), as installed here."""
    found: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        key = re.sub(r"[-_.]+", "-", current).lower()
        if key in found:
            continue
        found.add(key)
        for requirement in metadata.requires(current) or []:
            if "extra ==" not in requirement:
                pending.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return found


def _runtime_sdk(destination: Path) -> list[str]:
    """The runtime's stand-in in ``destination``: the development environment's boto3 and requirements, compiled."""
    copied = []
    for name in sorted(_requirements(_RUNTIME_SDK)):
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            target = destination / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(distribution.locate_file(file))), target)
        copied.append(f"{distribution.metadata['Name']} {distribution.version}")
    _compile(destination)
    return copied


def _drop_bytecode(path: Path) -> None:
    for cache in list(path.rglob("__pycache__")):
        shutil.rmtree(cache)


def prepare_layers(repo: Path, work: Path, *, quick: bool) -> BuiltLayer:
    """The layer variants under ``work`` (a scratch directory the caller removes).

    Raises:
        RuntimeError: the built layer holds an extension module this machine cannot load and has no match for.
    """
    site = Path(sysconfig.get_paths()["purelib"])
    built = repo / ".aws-sam" / "build"
    layer = built / "SharedLayer" / "python"
    if quick or not layer.is_dir():
        reason = "quick mode" if quick else "no `sam build` output"
        return BuiltLayer(
            shipped=[repo / "layers" / "shared", site],
            source_only=None,
            functions={name: repo / "functions" / name for name in ("receive", "deliver")},
            how=f"development layout ({reason}): `layers/shared`, then the development site-packages as installed",
            size_bytes=directory_bytes(repo / "layers" / "shared"),
        )
    shipped = work / "layer"
    shutil.copytree(layer, shipped, symlinks=True)
    swapped = _swap_extensions(shipped, site)
    source_only = work / "layer-source-only"
    shutil.copytree(shipped, source_only, symlinks=True)
    _drop_bytecode(source_only)
    runtime = work / "runtime"
    sdk = _runtime_sdk(runtime)
    how = "`sam build` output (`.aws-sam/build/SharedLayer/python`, arm64, with its unchecked-hash bytecode)"
    if swapped:
        how += f"; this machine's build of the same version swapped in for {', '.join(swapped)}"
    how += (
        f"; after it on `sys.path`, standing in for the runtime's boto3 (`/var/runtime` on Lambda, compiled): the "
        f"development environment's {', '.join(sdk)}, copied to a scratch directory and compiled with "
        "`--invalidation-mode unchecked-hash`"
    )
    return BuiltLayer(
        shipped=[shipped, runtime],
        source_only=[source_only, runtime],
        functions={name: built / f"{name.capitalize()}Function" for name in ("receive", "deliver")},
        how=how,
        size_bytes=directory_bytes(layer),
        source_size_bytes=directory_bytes(layer, bytecode=False),
        largest=_largest(layer),
    )
