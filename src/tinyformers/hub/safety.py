"""Checks that run before anything is built from a model folder someone else made.

Nothing here runs code from a file. A config is read as bounded JSON; weights are only ever
safetensors, and a safetensors file's header is read and checked here (its length, its JSON, each
tensor's dtype, shape and byte offsets against the file's size and against the shapes the config
needs) before a single tensor is loaded. Links inside a folder are followed only as far as the
folder models may be loaded from.

Every failure is a ``CheckpointError`` whose message is one line and names files by their folder
and file name, never by a path on the server.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from tinyformers.i18n import _

MAX_CONFIG_BYTES = 2**20  # a config.json is a few KB
MAX_HEADER_BYTES = 8 * 2**20  # a GPT-2 header is about 20 KB
MAX_DIMS = 8
MAX_MESSAGE = 300

# safetensors dtype -> (name shown to people, bytes per element)
DTYPES: dict[str, tuple[str, int]] = {
    "BOOL": ("bool", 1),
    "U8": ("uint8", 1),
    "I8": ("int8", 1),
    "F8_E4M3": ("float8_e4m3", 1),
    "F8_E5M2": ("float8_e5m2", 1),
    "U16": ("uint16", 2),
    "I16": ("int16", 2),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "U32": ("uint32", 4),
    "I32": ("int32", 4),
    "F32": ("float32", 4),
    "U64": ("uint64", 8),
    "I64": ("int64", 8),
    "F64": ("float64", 8),
}
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded; the message says why."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as a safetensors header describes it; offsets count from the end of the header."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


def file_label(path: Path) -> str:
    """``folder/file``: how messages name a file."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def public_message(err: BaseException, with_type: bool = True) -> str:
    """An error's message on one line with every path cut to its last part, after the error's
    type unless ``with_type`` is false."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    text = re.sub(r"(?:[A-Za-z]:)?(?:[\\/][^\\/\s'\"`]+)+[\\/]([^\\/\s'\"`]+)", r"\1", text)
    if with_type or not text:
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


@contextmanager
def checkpoint_errors(what: str) -> Iterator[None]:
    """Turn any failure inside the block into a ``CheckpointError`` about ``what``."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(
            _("{what} cannot be loaded: {error}").format(what=what, error=public_message(err))
        ) from err


# ---------------------------------------------------------------------------------------------
# Folders and links
# ---------------------------------------------------------------------------------------------


def check_inside(path: Path, root: Path, what: str) -> Path:
    """``path`` with every link resolved, refused unless it lies inside ``root``."""
    real = Path(path).resolve()
    if not real.is_relative_to(Path(root).resolve()):
        raise CheckpointError(
            _("{what} is outside the folder models may be loaded from").format(what=what)
        )
    return real


def check_links(folder: Path, root: Path) -> None:
    """Refuse a folder in which any entry (a link, say) leads outside ``root``."""
    for entry in sorted(Path(folder).iterdir()):
        check_inside(entry, root, file_label(entry))


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _value in pairs if key in seen or seen.add(key))
        raise ValueError(f"key {twice!r} appears twice")
    return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes, what: str) -> Any:
    """Strict JSON: UTF-8, no repeated keys, no NaN or Infinity."""
    try:
        return json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise CheckpointError(
            _("{what} is not valid JSON: {error}").format(what=what, error=public_message(err))
        ) from err


def read_json(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """A small JSON file, refused unread if it is larger than ``max_bytes``."""
    what = file_label(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as err:
        raise CheckpointError(
            _("{what} cannot be read: {error}").format(what=what, error=public_message(err))
        ) from err
    if len(raw) > max_bytes:
        raise CheckpointError(
            _("{what} is larger than {size} KB; a config is a few KB").format(
                what=what, size=max_bytes // 1024
            )
        )
    return parse_json(raw, what)


# ---------------------------------------------------------------------------------------------
# safetensors headers
# ---------------------------------------------------------------------------------------------


def read_header(path: Path) -> dict[str, TensorEntry]:
    """The tensors a safetensors file holds, from its header alone, checked against its size.

    The file is 8 bytes (the header's length, little-endian), a JSON header of that length, then
    the tensors' bytes. The tensors must tile the data exactly: each starts where the previous
    ends, and the last ends where the file does.
    """
    what = file_label(path)
    with open(path, "rb") as handle:
        size = Path(path).stat().st_size
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{what} is not a safetensors file: it has fewer than 8 bytes")
        length = int.from_bytes(prefix, "little")
        if not 2 <= length <= MAX_HEADER_BYTES:
            raise CheckpointError(
                f"{what} is not a safetensors file: its header length {length} is not between 2 "
                f"and {MAX_HEADER_BYTES}"
            )
        if 8 + length > size:
            raise CheckpointError(
                f"{what} is truncated: its header needs {length} bytes but the file ends first"
            )
        raw = handle.read(length)
    if len(raw) < length:
        raise CheckpointError(f"{what} is truncated: it ended while its header was read")
    if not raw.startswith(b"{"):
        raise CheckpointError(f"{what} is not a safetensors file: its header is not a JSON object")
    header = parse_json(raw, f"the header of {what}")
    if not isinstance(header, dict):
        raise CheckpointError(f"{what} is not a safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise CheckpointError(f"the __metadata__ of {what} is not a table of strings")
    entries = {name: _entry(name, info, what) for name, info in header.items()}
    data_bytes = size - 8 - length
    position = 0
    for name, entry in sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end)):
        if entry.begin != position:
            raise CheckpointError(
                f"tensor {name!r} in {what} starts at byte {entry.begin}, not at {position} where "
                "the previous tensor ends"
            )
        position = entry.end
    if position != data_bytes:
        raise CheckpointError(
            f"{what} has {data_bytes} bytes of tensor data but its header describes {position}"
        )
    return entries


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(name: str, info: Any, what: str) -> TensorEntry:
    where = f"tensor {name!r} in {what}"
    if not name or len(name) > 1000:
        raise CheckpointError(f"{what} has a tensor name that is empty or too long")
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise CheckpointError(f"{where} is not described by dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPES:
        raise CheckpointError(f"{where} has an unknown dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(map(_whole, shape)):
        raise CheckpointError(f"{where} has a shape that is not up to {MAX_DIMS} whole numbers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_whole, offsets))):
        raise CheckpointError(f"{where} has data_offsets that are not two whole numbers")
    begin, end = offsets
    if begin > end:
        raise CheckpointError(f"{where} ends (byte {end}) before it begins (byte {begin})")
    if math.prod(shape) * DTYPES[dtype][1] != end - begin:
        raise CheckpointError(
            f"{where} has shape {tuple(shape)} of {DTYPES[dtype][0]}, which does not fit its "
            f"{end - begin} bytes"
        )
    return TensorEntry(dtype, tuple(shape), begin, end)


def expected_tensors(module: nn.Module, skip=()) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Name -> (shape, whether floats) of every tensor a checkpoint of ``module`` must hold;
    ``skip`` names tied copies that are not stored. Build ``module`` on the meta device: only
    shapes and dtypes are read."""
    return {
        name: (tuple(t.shape), t.dtype.is_floating_point)
        for name, t in module.state_dict().items()
        if name not in skip
    }


def check_tensors(
    found: Mapping[str, TensorEntry],
    expected: Mapping[str, tuple[tuple[int, ...], bool]],
    source: str,
    extra_bytes: int = 0,
) -> None:
    """Every expected tensor present with its shape, floats where floats are needed, and nothing
    else unless ``extra_bytes`` allows other tensors of at most that many bytes in all."""
    missing = sorted(set(expected) - set(found))
    if missing:
        raise CheckpointError(f"{source} is missing tensor {missing[0]!r}" + _more(missing))
    unexpected = sorted(set(found) - set(expected))
    if unexpected and not extra_bytes:
        raise CheckpointError(
            f"{source} has unexpected tensor {unexpected[0]!r}" + _more(unexpected)
        )
    if sum(found[name].nbytes for name in unexpected) > extra_bytes:
        raise CheckpointError(
            f"{source} holds more bytes of tensors the model does not use than of its own weights"
        )
    for name, (shape, floating) in expected.items():
        entry = found[name]
        if entry.shape != shape:
            raise CheckpointError(
                f"tensor {name!r} in {source} has shape {entry.shape} but the config needs {shape}"
            )
        if floating and entry.dtype not in FLOAT_DTYPES:
            raise CheckpointError(
                f"tensor {name!r} in {source} has dtype {DTYPES[entry.dtype][0]}, expected floats"
            )


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""
