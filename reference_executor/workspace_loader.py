"""Loads the mounted workspace into a namespace. Runs inside the kernel process, not the server.

The kernel layer executes ``load(folder, globals())`` silently once per kernel, before the
executor is ready; what it prints goes to the server's log, never to an execute response.
Standard library only: this module must not import anything of the server.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["load", "python_files"]


def python_files(folder: Path) -> list[Path]:
    """The ``.py`` files directly in ``folder``, in sorted file-name order (CODE-1, CODE-2)."""
    if not folder.is_dir():
        return []
    return sorted(
        (path for path in folder.iterdir() if path.suffix == ".py" and path.is_file()),
        key=lambda path: path.name,
    )


def load(folder: str, namespace: dict[str, Any]) -> tuple[int, int]:
    """Execute every workspace file in ``namespace``; return (files loaded, files failed).

    A file that raises is reported on stderr and skipped (CODE-4). The folder goes first on
    ``sys.path`` so that files can import their siblings (CODE-2).
    """
    root = Path(folder)
    files = python_files(root)
    if not files:
        print(f"workspace: nothing to load in {root}")
        return 0, 0
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    loaded = failed = 0
    had_file = "__file__" in namespace
    previous_file = namespace.get("__file__")
    for path in files:
        namespace["__file__"] = str(path)
        try:
            code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
            exec(code, namespace)
        except BaseException:  # a workspace file must never stop the others from loading
            failed += 1
            print(f"workspace: {path.name} failed and was skipped:", file=sys.stderr)
            traceback.print_exc()
        else:
            loaded += 1
    if had_file:
        namespace["__file__"] = previous_file
    else:
        namespace.pop("__file__", None)
    print(f"workspace: loaded {loaded} of {len(files)} files from {root}")
    sys.stdout.flush()
    sys.stderr.flush()
    return loaded, failed
