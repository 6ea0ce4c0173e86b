"""The SHA-256 manifest of a model folder: what was written is what is loaded.

Training writes ``manifest.json`` beside the model's artifacts and the same
file -> hash table into the registry (a model-version tag). Serving recomputes the
hashes and refuses a folder whose files differ from the manifest, naming each file:
an edited card (conformal thresholds, out-of-distribution threshold, the
simulated-data flag), a swapped model file, an added or removed artifact.

The folder's own ``manifest.json`` shows the files were not changed *after* it was
written; it does not show who wrote it. The registry's copy, and a digest compared
out of band (:func:`digest`), do.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "MLmodel").write_text("flavors: {}\\n")
>>> manifest = file_hashes(folder)
>>> _ = write_manifest(manifest, folder)
>>> read_manifest(folder) == manifest
True
>>> verify(folder, manifest)
>>> _ = (folder / "MLmodel").write_text("flavors: {sklearn: {}}\\n")
>>> verify(folder, manifest)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
models.manifest.ManifestError: model folder ...: MLmodel changed since ...
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"
FORMAT = 1
#: The model-version tag that holds the manifest in the registry.
REGISTRY_TAG = "sha256_manifest"


class ManifestError(ValueError):
    """A model folder whose files are not the ones its manifest lists."""


def file_hashes(folder: Path) -> dict[str, str]:
    """``relative path -> SHA-256`` of every regular file under ``folder`` but the
    manifest itself (a symbolic link or other non-regular file is refused)."""
    folder = Path(folder)
    hashes = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if name == MANIFEST or path.is_dir() and not path.is_symlink():
            continue
        if path.is_symlink() or not path.is_file():
            raise ManifestError(
                f"model folder {folder}: {name} is not a regular file (a link or a "
                "device); a model folder holds plain files only. Copy the folder "
                "with its files, not links."
            )
        digest_ = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest_.update(block)
        hashes[name] = digest_.hexdigest()
    return hashes


def write_manifest(hashes: dict[str, str], folder: Path) -> Path:
    """Write ``hashes`` (:func:`file_hashes`) to ``folder/manifest.json``."""
    text = json.dumps({"format": FORMAT, "sha256": hashes}, indent=2, sort_keys=True)
    path = Path(folder) / MANIFEST
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> dict[str, str] | None:
    """The hashes ``folder/manifest.json`` lists; None when there is no manifest."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        return parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read ({exc}).") from None


def parse(text: str, where: str) -> dict[str, str]:
    """The hashes of a manifest's JSON text (a file, or the registry's tag)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not a manifest (invalid JSON: {exc}).") from None
    hashes = raw.get("sha256") if isinstance(raw, dict) else None
    if (
        not isinstance(raw, dict)
        or raw.get("format") != FORMAT
        or not isinstance(hashes, dict)
        or not all(isinstance(v, str) and len(v) == 64 for v in hashes.values())
    ):
        raise ManifestError(
            f"{where}: not a manifest of format {FORMAT} (a 'sha256' table of file "
            "names and 64-character hashes). Re-register the model with "
            "`python -m training`."
        )
    return {str(k): v for k, v in hashes.items()}


def dumps(hashes: dict[str, str]) -> str:
    """The manifest's JSON text, as stored in the registry tag."""
    return json.dumps({"format": FORMAT, "sha256": hashes}, sort_keys=True)


def digest(hashes: dict[str, str]) -> str:
    """One SHA-256 over the whole manifest: the model's fingerprint, to compare
    with the one the lab that trained it publishes."""
    return hashlib.sha256(dumps(hashes).encode()).hexdigest()


def verify(folder: Path, expected: dict[str, str]) -> None:
    """Raise :class:`ManifestError` naming every file of ``folder`` that differs
    from ``expected``: changed, missing, or not in the manifest."""
    actual = file_hashes(folder)
    changed = sorted(k for k in expected if k in actual and actual[k] != expected[k])
    missing = sorted(k for k in expected if k not in actual)
    added = sorted(k for k in actual if k not in expected)
    problems = [
        *(f"{k} changed since the model was registered" for k in changed),
        *(f"{k} is missing" for k in missing),
        *(f"{k} is not in the manifest" for k in added),
    ]
    if problems:
        raise ManifestError(
            f"model folder {folder}: {'; '.join(problems)}. The model was not "
            "loaded: its files are not the ones that were trained and registered. "
            "Get an unmodified copy from the lab that trained it (compare its "
            "fingerprint), or retrain with `python -m training`."
        )
