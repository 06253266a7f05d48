"""Fitted models on disk: a joblib file plus a JSON manifest that says what it is.

Layout, under the directory the caller passes (``settings.data_dir / "models"``)::

    {version}/model.joblib
    {version}/manifest.json

The version reads ``yield-{crops}-{trained_through}-{hash}``, e.g.
``yield-garlic+maize-2024-1a2b3c4d``: the crops joined by ``+``, the last
training season, and the first 8 hex digits of the model file's SHA-256, so
two different models never share a version and the same model saved twice
gets the same one (the second save is a no-op).

A pickle is only safe to load with the scikit-learn it was written with:
:func:`load_model` refuses a model whose scikit-learn major.minor differs
from the running one, before unpickling anything, and checks the file's
hash against the manifest. A version directory appears whole or not at all
(written aside, then renamed), so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import sklearn

import agrimatch

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
HASH_CHARS = 8


class ModelStoreError(RuntimeError):
    """A model cannot be saved or loaded; the message says which and why."""


class IncompatibleModelError(ModelStoreError):
    """The stored model was written by another scikit-learn major.minor version."""


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """What a stored model is: how to name it, what it was trained on, how good it was."""

    version: str
    kind: str
    crops: tuple[str, ...]
    training_window: tuple[int, int]  # first and last season year of the training rows
    feature_columns: tuple[str, ...]
    categorical_columns: tuple[str, ...]
    quantiles: tuple[float, ...]
    metrics: dict[str, float]  # held-out: wape_p50, pinball_*, coverage_p10_p90, ...
    package_version: str  # agrimatch
    sklearn_version: str
    created_at: str  # ISO 8601, UTC
    model_sha256: str
    params: dict[str, Any] = field(default_factory=dict)  # the estimator's JSON-able params
    # What the model learned from, as the caller names it (the chain: a hash of the
    # field-seasons in the training set), so a job can tell whether a stored model is current.
    training_key: str = ""

    @property
    def trained_through(self) -> int:
        """The last season the model was trained on."""
        return self.training_window[1]

    def to_json(self) -> str:
        """The manifest as JSON text (keys sorted, stable across saves)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ModelManifest:
        """Parse a manifest written by :meth:`to_json`."""
        data = json.loads(text)
        try:
            return cls(
                version=str(data["version"]),
                kind=str(data["kind"]),
                crops=tuple(data["crops"]),
                training_window=(int(data["training_window"][0]), int(data["training_window"][1])),
                feature_columns=tuple(data["feature_columns"]),
                categorical_columns=tuple(data["categorical_columns"]),
                quantiles=tuple(float(q) for q in data["quantiles"]),
                metrics={str(k): float(v) for k, v in data["metrics"].items()},
                package_version=str(data["package_version"]),
                sklearn_version=str(data["sklearn_version"]),
                created_at=str(data["created_at"]),
                model_sha256=str(data["model_sha256"]),
                params=dict(data.get("params", {})),
                training_key=str(data.get("training_key", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelStoreError(f"malformed model manifest: {exc!r}") from exc


def model_version(kind: str, crops: tuple[str, ...], trained_through: int, sha256: str) -> str:
    """``{kind}-{crop+crop}-{trained_through}-{hash8}``: readable and unique per model file."""
    return f"{kind}-{'+'.join(sorted(crops))}-{trained_through}-{sha256[:HASH_CHARS]}"


def _major_minor(version: str) -> str:
    """``"1.9.1"`` -> ``"1.9"``: the part of a scikit-learn version pickles depend on."""
    return ".".join(version.split(".")[:2])


def _json_params(model: Any) -> dict[str, Any]:
    """The estimator's parameters that JSON can hold (tuples become lists)."""
    params: dict[str, Any] = {}
    for name, value in model.get_params(deep=False).items():
        plain = list(value) if isinstance(value, tuple) else value
        try:
            json.dumps(plain, allow_nan=False)
        except (TypeError, ValueError):
            plain = repr(value)
        params[name] = plain
    return params


def save_model(
    model: Any,
    directory: Path,
    *,
    metrics: Mapping[str, float],
    training_window: tuple[int, int] | None = None,
    kind: str = "yield",
    created_at: datetime | None = None,
    training_key: str = "",
) -> ModelManifest:
    """Persist a fitted model and its manifest under ``directory``; returns the manifest.

    ``training_window`` (first, last season) defaults to the model's
    ``training_window_``; crops, feature and categorical columns and quantiles
    come from the fitted model (``crops_``, ``feature_columns_``...). ``metrics``
    are the held-out metrics to stamp it with (finite numbers, e.g. from
    :func:`forecasting.metrics.quantile_metrics`). ``training_key`` names the
    training data (see :attr:`ModelManifest.training_key`); it is part of the
    version, so the same model learned from other data is stored apart.
    """
    window = training_window or getattr(model, "training_window_", None)
    if window is None:
        raise ModelStoreError("no training window: pass training_window=(first, last) season")
    if not hasattr(model, "feature_columns_"):
        raise ModelStoreError(f"{type(model).__name__} is not fitted: nothing to save")
    clean_metrics = {str(k): float(v) for k, v in metrics.items()}
    bad = sorted(k for k, v in clean_metrics.items() if not math.isfinite(v))
    if bad:
        raise ModelStoreError(f"metrics must be finite numbers, not: {bad}")

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    payload = buffer.getvalue()
    sha256 = hashlib.sha256(payload).hexdigest()
    crops = tuple(sorted(str(c) for c in getattr(model, "crops_", ())))
    first, last = int(window[0]), int(window[1])
    named = hashlib.sha256(payload + training_key.encode()).hexdigest() if training_key else sha256
    version = model_version(kind, crops, last, named)
    manifest = ModelManifest(
        version=version,
        kind=kind,
        crops=crops,
        training_window=(first, last),
        feature_columns=tuple(model.feature_columns_),
        categorical_columns=tuple(getattr(model, "categorical_columns_", ())),
        quantiles=tuple(float(q) for q in getattr(model, "quantiles_", ())),
        metrics=clean_metrics,
        package_version=agrimatch.__version__,
        sklearn_version=sklearn.__version__,
        created_at=(created_at or datetime.now(UTC)).astimezone(UTC).isoformat(),
        model_sha256=sha256,
        params=_json_params(model),
        training_key=training_key,
    )

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / version
    if target.exists():
        # Same bytes, same version: this exact model is already stored.
        return read_manifest(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=directory))
    try:
        (staging / MODEL_FILE).write_bytes(payload)
        (staging / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if target.exists():  # another writer stored the same model first
            return read_manifest(target)
        raise
    return manifest


def read_manifest(version_dir: Path) -> ModelManifest:
    """The manifest of one stored model (its version directory)."""
    path = version_dir / MANIFEST_FILE
    if not path.is_file():
        raise ModelStoreError(f"no model manifest at {path}")
    return ModelManifest.from_json(path.read_text(encoding="utf-8"))


def list_models(directory: Path, kind: str | None = None) -> list[ModelManifest]:
    """Stored models under ``directory``, oldest first (by ``created_at``, then version)."""
    if not directory.is_dir():
        return []
    manifests = [
        read_manifest(child)
        for child in directory.iterdir()
        if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST_FILE).is_file()
    ]
    if kind is not None:
        manifests = [m for m in manifests if m.kind == kind]
    return sorted(manifests, key=lambda m: (m.created_at, m.version))


def load_model(
    directory: Path, version: str | None = None, kind: str = "yield"
) -> tuple[Any, ModelManifest]:
    """Load a stored model and its manifest: ``version``, or the newest of ``kind``.

    Raises :class:`IncompatibleModelError` if it was written by another
    scikit-learn major.minor, :class:`ModelStoreError` if it is missing or its
    file does not match the manifest's hash.
    """
    if version is None:
        stored = list_models(directory, kind)
        if not stored:
            raise ModelStoreError(f"no {kind} model stored under {directory}")
        manifest = stored[-1]
    else:
        manifest = read_manifest(directory / version)
    if _major_minor(manifest.sklearn_version) != _major_minor(sklearn.__version__):
        raise IncompatibleModelError(
            f"model {manifest.version} was saved with scikit-learn {manifest.sklearn_version} "
            f"but this is scikit-learn {sklearn.__version__}: models do not carry across "
            f"scikit-learn minor versions, retrain it"
        )
    path = directory / manifest.version / MODEL_FILE
    if not path.is_file():
        raise ModelStoreError(f"model file missing: {path}")
    payload = path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != manifest.model_sha256:
        raise ModelStoreError(f"model file {path} does not match its manifest's SHA-256")
    return joblib.load(io.BytesIO(payload)), manifest
