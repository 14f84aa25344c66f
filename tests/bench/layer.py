"""The shared layer as it ships, for the cold-start measures: ``sam build``'s output, made runnable here.

``sam build`` (``make build``) writes the layer to ``.aws-sam/build/SharedLayer/python``: pip's
install of ``layers/shared/requirements.txt`` for arm64 plus the ``webhook_adapter`` package, and
no bytecode. This machine may not be arm64: the few compiled extension modules (pydantic-core,
wrapt) are then replaced in a copy by the same versions' builds for this machine, taken from the
development environment (the versions are checked to match). Everything else is byte for byte
what ships. A second copy gets ``.pyc`` files compiled with ``--invalidation-mode unchecked-hash``:
what shipping bytecode would give (valid on Lambda whatever the file times).

Without a ``sam build`` output (or in quick mode) the development layout stands in: the package
from ``layers/shared`` and the development site-packages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BuiltLayer", "directory_bytes", "prepare_layers"]

_EXTENSION = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


@dataclass(frozen=True)
class BuiltLayer:
    """The layer variants to measure, the functions' directories, and what the layer weighs."""

    shipped: list[Path]
    """``sys.path`` entries of the layer as built (no bytecode), in order."""
    compiled: list[Path] | None
    """The same with unchecked-hash bytecode, or ``None`` (development layout)."""
    functions: dict[str, Path]
    how: str
    size_bytes: int = 0
    compiled_size_bytes: int = 0
    largest: list[tuple[str, int]] = field(default_factory=list)


def directory_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (unzipped size)."""
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


def _largest(path: Path, count: int = 6) -> list[tuple[str, int]]:
    sizes = [(item.name, directory_bytes(item) if item.is_dir() else item.stat().st_size) for item in path.iterdir()]
    locales = path / "pycountry" / "locales"
    if locales.is_dir():
        sizes.append(("pycountry/locales", directory_bytes(locales)))
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


def _compile(layer: Path) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter on our own copy
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(layer)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


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
            compiled=None,
            functions={name: repo / "functions" / name for name in ("receive", "deliver")},
            how=f"development layout ({reason}): `layers/shared`, then the development site-packages as installed",
            size_bytes=directory_bytes(repo / "layers" / "shared"),
        )
    shipped = work / "layer"
    shutil.copytree(layer, shipped, symlinks=True)
    swapped = _swap_extensions(shipped, site)
    compiled = work / "layer-compiled"
    shutil.copytree(shipped, compiled, symlinks=True)
    _compile(compiled)
    how = "`sam build` output (`.aws-sam/build/SharedLayer/python`, arm64, no bytecode)"
    if swapped:
        how += f"; this machine's build of the same version swapped in for {', '.join(swapped)}"
    return BuiltLayer(
        shipped=[shipped],
        compiled=[compiled],
        functions={name: built / f"{name.capitalize()}Function" for name in ("receive", "deliver")},
        how=how,
        size_bytes=directory_bytes(layer),
        compiled_size_bytes=directory_bytes(compiled),
        largest=_largest(layer),
    )
