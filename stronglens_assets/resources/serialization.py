"""Deterministic encoders/decoders for asset outputs (the storage contract's formats).

=====================================  ==========  ==========================================
Python value                           extension   encoding
=====================================  ==========  ==========================================
``pandas.DataFrame``                   ``parquet`` pyarrow, index kept only if not a RangeIndex
mapping of ``str`` -> ``torch.Tensor`` ``pt``      ``torch.save``; loaded ``weights_only=True``
``numpy.ndarray``                      ``npz``     one member named ``array``
mapping of ``str`` -> ``numpy.ndarray``  ``npz``   one member per key
``dict`` / ``list`` (JSON types)       ``json``    sorted keys, 2-space indent, no NaN
=====================================  ==========  ==========================================

No pickle anywhere: ``.npz`` is read with ``allow_pickle=False``
(:mod:`stronglens_assets.science.core.npz`) and ``.pt`` with ``weights_only=True``. The same
value always encodes to the same bytes (``.npz`` members carry a fixed timestamp), so
re-materializing an asset with the same inputs writes the same bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from stronglens_assets.errors import StronglensError
from stronglens_assets.science.core.npz import NpzError, decode_npz, encode_npz

EXTENSIONS: tuple[str, ...] = ("parquet", "pt", "npz", "json")
SINGLE_ARRAY_MEMBER = "array"


class SerializationError(StronglensError, TypeError):
    """A value cannot be stored under the storage contract."""


def _is_state_dict(obj: Any) -> bool:
    if not isinstance(obj, Mapping) or not obj:
        return False
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _is_array_mapping(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())
    )


def extension_for(obj: Any) -> str:
    """File extension that :func:`encode` uses for ``obj``."""
    if isinstance(obj, pd.DataFrame):
        return "parquet"
    if _is_state_dict(obj):
        return "pt"
    if isinstance(obj, np.ndarray) or _is_array_mapping(obj):
        return "npz"
    if isinstance(obj, dict | list):
        return "json"
    raise SerializationError(
        f"cannot store a {type(obj).__name__}: supported are pandas.DataFrame, dict/list (JSON), "
        "numpy arrays or dicts of arrays (npz), and torch state dicts"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise SerializationError(f"value of type {type(value).__name__} is not JSON serializable")


def encode(obj: Any) -> tuple[bytes, str]:
    """Encode ``obj``; return ``(bytes, extension)``."""
    extension = extension_for(obj)
    if extension == "parquet":
        buffer = io.BytesIO()
        keep_index = not isinstance(obj.index, pd.RangeIndex)
        obj.to_parquet(buffer, engine="pyarrow", index=keep_index)
        return buffer.getvalue(), extension
    if extension == "pt":
        import torch

        buffer = io.BytesIO()
        torch.save(dict(obj), buffer)
        return buffer.getvalue(), extension
    if extension == "npz":
        arrays = {SINGLE_ARRAY_MEMBER: obj} if isinstance(obj, np.ndarray) else obj
        try:
            return encode_npz(arrays), extension
        except NpzError as exc:
            raise SerializationError(str(exc)) from exc
    try:
        text = json.dumps(obj, sort_keys=True, indent=2, allow_nan=False, default=_json_default)
    except ValueError as exc:
        raise SerializationError(f"JSON output contains NaN or infinity: {exc}") from exc
    return (text + "\n").encode("utf-8"), extension


def decode(data: bytes, extension: str) -> Any:
    """Decode bytes written by :func:`encode` with the given extension."""
    if extension == "parquet":
        return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    if extension == "pt":
        import torch

        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if extension == "npz":
        arrays = decode_npz(data)
        if list(arrays) == [SINGLE_ARRAY_MEMBER]:
            return arrays[SINGLE_ARRAY_MEMBER]
        return arrays
    if extension == "json":
        return json.loads(data.decode("utf-8"))
    raise SerializationError(f"unknown extension {extension!r}; expected one of {EXTENSIONS}")
