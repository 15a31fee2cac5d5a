"""Build a file or folder beside its destination and move it into place only when it is complete.

Everything the package writes for users (converted packages, weight folders) goes through here, so
a failure or an interrupt never leaves a half-written result at the destination.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_path(destination: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield the path to build `destination` at (in a hidden staging folder beside it).

    When the block succeeds the result is renamed into place; an existing destination is refused
    (FileExistsError), or with `overwrite` swapped out only once the new one is complete. The
    staging folder is removed whatever happens.
    """
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise FileExistsError(f"{destination} already exists")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent))
    try:
        built = staging / destination.name
        yield built
        if not built.exists():
            raise FileNotFoundError(f"nothing was built for {destination}")
        if destination.exists():
            if not overwrite:
                raise FileExistsError(f"{destination} already exists")
            os.replace(destination, staging / ".replaced")  # the old one goes away with the staging folder
        os.replace(built, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
