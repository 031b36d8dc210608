"""`dermseg-export --formats web`: a self-contained folder that segments in the browser, so that no image leaves the
device. It needs only the runtime install (ONNX Runtime reads the model's metadata; no torch, no onnx package).

    index.html, dermseg-web.js    the page and its script (the per-image core in JavaScript: `web/dermseg-web.js`)
    ort/                           ONNX Runtime Web's WebAssembly build, pinned (`ORT_WEB_VERSION`, its npm integrity
                                   hash checked), with its licence
    model.onnx, model.json         the model (the INT8 file at its training size) and its metadata as JSON (ONNX
                                   Runtime Web cannot read ONNX metadata)
    manifest.json                  every file's SHA-256, which the page checks before it runs anything, and the
                                   runtime's limits and texts it applies (pixel limit, review threshold)

ONNX Runtime Web comes from its npm package: `npm pack` at export time into the user's cache (kept there for the next
export), or a tarball the user names (`--web-runtime`). The folder is written under a temp name and renamed into
place, so it is whole or absent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.image_formats import UNREADABLE
from ..defaults import DEFAULT_MAX_PIXELS, DEFAULT_REVIEW_BELOW
from ..errors import BackendUnavailableError, ModelFileError, UserError
from ..model.metadata import ModelMetadata
from ..util.atomic import TEMP_PREFIX

ORT_WEB_VERSION = "1.31.1"
ORT_WEB_INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
"""npm's `dist.integrity` of onnxruntime-web at that version: the tarball is refused unless its SHA-512 is this."""
ORT_WEB_FILES = ("dist/ort.wasm.min.js", "dist/ort-wasm-simd-threaded.mjs", "dist/ort-wasm-simd-threaded.wasm")
ORT_WEB_LICENSE = """onnxruntime-web {version} (https://www.npmjs.com/package/onnxruntime-web), ONNX Runtime's WebAssembly build.
Licence: MIT (its package.json), the licence of ONNX Runtime (https://github.com/microsoft/onnxruntime):

MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation the
rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit
persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of the
Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""
PAGE_DIR = Path(__file__).resolve().parent / "web"
PAGE_FILES = ("index.html", "dermseg-web.js")
MANIFEST_NAME = "manifest.json"
HOW_TO_PROVIDE = (f"run `npm pack onnxruntime-web@{ORT_WEB_VERSION}` where the npm registry is reachable and pass the "
                  f"tarball with --web-runtime, or put it in {{cache}}")


class WebRuntimeUnavailableError(BackendUnavailableError):
    """ONNX Runtime Web's files could not be had (no npm, no registry, a tarball that is not the pinned one): exit 4."""


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dermseg" / "npm"


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def runtime_tarball(given: Path | None = None, cache: Path | None = None, fetch: bool = True) -> bytes:
    """The pinned onnxruntime-web tarball's bytes: `given`, else the cached one, else (where `fetch`) `npm pack` into
    the cache; its integrity is checked whichever it is."""
    cache = cache or default_cache()
    cached = cache / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    how = HOW_TO_PROVIDE.format(cache=cached)
    if given is not None:
        try:
            data = given.read_bytes()
        except OSError as exc:
            raise WebRuntimeUnavailableError(f"--web-runtime {given}: cannot be read ({exc.strerror or exc})") from exc
        if _integrity(data) != ORT_WEB_INTEGRITY:
            raise WebRuntimeUnavailableError(f"--web-runtime {given}: not onnxruntime-web {ORT_WEB_VERSION} (its SHA-512 "
                                             f"differs from npm's integrity hash); {how}")
        return data
    if cached.is_file() and _integrity(cached.read_bytes()) == ORT_WEB_INTEGRITY:
        return cached.read_bytes()
    if not fetch:
        raise WebRuntimeUnavailableError(f"ONNX Runtime Web {ORT_WEB_VERSION} is not in {cached}: `dermseg-export "
                                         f"--formats web` puts it there, or {how}")
    npm = shutil.which("npm")
    if npm is None:
        raise WebRuntimeUnavailableError(f"ONNX Runtime Web is needed for --formats web and npm is not installed; {how}")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        packed = subprocess.run([npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--pack-destination", str(cache)],
                                capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WebRuntimeUnavailableError(f"npm pack onnxruntime-web@{ORT_WEB_VERSION} failed ({exc}); {how}") from exc
    if packed.returncode != 0 or not cached.is_file():
        last = (packed.stderr.strip().splitlines() or ["no output"])[-1]
        raise WebRuntimeUnavailableError(f"npm pack onnxruntime-web@{ORT_WEB_VERSION} failed ({last}); {how}")
    data = cached.read_bytes()
    if _integrity(data) != ORT_WEB_INTEGRITY:
        cached.unlink()
        raise WebRuntimeUnavailableError(f"npm gave an onnxruntime-web {ORT_WEB_VERSION} whose SHA-512 differs from the "
                                         f"pinned integrity hash: refused; {how}")
    return data


def _runtime_files(tarball: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        files = {}
        for name in ORT_WEB_FILES:
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise WebRuntimeUnavailableError(f"onnxruntime-web {ORT_WEB_VERSION}'s tarball lacks {name}")
            files[f"ort/{Path(name).name}"] = member.read()
    return files


def model_metadata(onnx_path: Path) -> ModelMetadata:
    """The model's dermseg metadata, read by ONNX Runtime (all the runtime install has)."""
    from ..backends.onnxruntime_backend import OnnxRuntimeBackend

    with OnnxRuntimeBackend(onnx_path, threads=1) as backend:
        return backend.metadata


@dataclass(frozen=True)
class WebExport:
    """The folder, what it holds, and whether its model is INT8."""

    folder: Path
    files: dict[str, str]
    """Every file's SHA-256, by its path in the folder."""
    int8: bool
    bytes: int

    def summary(self) -> str:
        precision = "INT8" if self.int8 else "FP32 (an INT8 file downloads a quarter of it: --formats onnx-int8)"
        return (f"wrote {self.folder}/ ({len(self.files)} files, {self.bytes / 1e6:.1f} MB; the model in {precision}, "
                f"ONNX Runtime Web {ORT_WEB_VERSION}); serve it from any static web server, e.g. `python -m http.server "
                f"-d {self.folder}`, and open index.html: it checks every file's SHA-256 before it runs")


def write_web_folder(onnx_path: Path, folder: Path, runtime: Path | None = None, cache: Path | None = None,
                     fetch: bool = True) -> WebExport:
    """The folder of the module docstring for `onnx_path`, at `folder` (replaced where it holds an earlier web
    export; any other non-empty folder is refused); ONNX Runtime Web from `runtime_tarball`."""
    if not onnx_path.is_file():
        raise ModelFileError(f"{onnx_path}: model file not found")
    if folder.exists() and any(folder.iterdir()) and not (folder / MANIFEST_NAME).is_file():
        raise UserError(f"{folder}: a folder that is not a dermseg web export and is not empty; choose another")
    metadata = model_metadata(onnx_path)
    files: dict[str, bytes] = {name: (PAGE_DIR / name).read_bytes() for name in PAGE_FILES}
    files |= _runtime_files(runtime_tarball(runtime, cache, fetch))
    files["ort/LICENSE.txt"] = ORT_WEB_LICENSE.format(version=ORT_WEB_VERSION).encode()
    files["model.onnx"] = onnx_path.read_bytes()
    files["model.json"] = json.dumps(metadata.to_dict(), indent=1, sort_keys=True).encode()
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    manifest = {"files": digests, "runtime": {"name": "onnxruntime-web", "version": ORT_WEB_VERSION,
                                              "integrity": ORT_WEB_INTEGRITY, "license": "MIT (ort/LICENSE.txt)"},
                "model": {"source": onnx_path.name, "size_px": metadata.size_px,
                          "precision": metadata.extra.get("precision", "fp32")},
                "settings": {"max_pixels": DEFAULT_MAX_PIXELS, "review_below": DEFAULT_REVIEW_BELOW,
                             "unreadable": UNREADABLE}}
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-web-", dir=folder.parent))
    try:
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
        os.chmod(staging, 0o755)
        if folder.exists():
            old = folder.with_name(f"{TEMP_PREFIX}{os.getpid()}-old-{folder.name}")
            os.replace(folder, old)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(len(data) for data in files.values())
    return WebExport(folder, digests, metadata.extra.get("precision") == "int8", size)
