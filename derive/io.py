"""Every file derive writes: one file or a whole set of files, each written whole or not at all."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from derive.errors import InputError, OutputError

Files = Mapping[str, "str | bytes"]      # file name inside the output folder → its text or bytes


def read_text(path: Path) -> str:
    """A user's file as text; InputError saying in words what is wrong (which byte is not UTF-8, where)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(_not_utf8(data, exc.start)) from None


def _not_utf8(data: bytes, at: int) -> str:
    line = data.count(b"\n", 0, at) + 1
    column = at - (data.rfind(b"\n", 0, at) + 1) + 1
    return (f"is not UTF-8 text: byte 0x{data[at]:02x} at line {line}, column {column} is not valid UTF-8; "
            f"expected the file saved as UTF-8 (an editor's \"Save with encoding: UTF-8\")")


def _bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write the whole file or nothing: a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_bytes(data))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_files(files: Files, out: str | Path, stale: re.Pattern[str] | None = None) -> list[Path]:
    """Write every file into the folder ``out`` or none: all are made in a temporary folder, then moved in.

    A new folder is built beside its place and renamed into it; in an existing one the files are
    moved in one by one, after the checks that could stop the moves halfway. With ``stale``, files
    of the folder whose names match it and that this run does not write are removed (the files of
    an earlier, larger exam), so the folder holds one run; other files stay.
    """
    target = Path(out)
    _refuse_obstacles(files, target, str(out))
    try:
        if target.exists():
            _move_into(files, target, stale)
        else:
            _create(files, target)
    except OSError as exc:
        where = exc.filename if exc.filename and f"{os.sep}." not in str(exc.filename) else out
        raise OutputError(f"--out {out}: cannot write {where} ({exc.strerror or exc})") from None
    return [target / name for name in files]


def _refuse_obstacles(files: Files, target: Path, out: str) -> None:
    if target.exists() and not target.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    for name in files:
        if (target / name).is_dir():
            raise OutputError(f"--out {out}: {target / name} is a folder; expected a file there or nothing")


def _fill(files: Files, folder: Path) -> None:
    for name, data in files.items():
        (folder / name).write_bytes(_bytes(data))


def _create(files: Files, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        _fill(files, tmp)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_into(files: Files, target: Path, stale: re.Pattern[str] | None) -> None:
    with tempfile.TemporaryDirectory(dir=target, prefix=".derive-") as tmp:
        _fill(files, Path(tmp))
        for name in files:
            os.replace(Path(tmp) / name, target / name)
    if stale is not None:
        for old in sorted(target.iterdir()):
            if stale.fullmatch(old.name) and old.name not in files and old.is_file():
                old.unlink()
