"""Pages made when the site is built (mkdocs-gen-files), from the code and the committed records, so that no figure or
table is copied by hand:

    reference/exit-codes.md    from `dermseg_deploy.cli.common.EXIT_CODES`
    reference/metadata.md      from `dermseg_deploy.model.metadata.METADATA_FIELDS` (tests hold it to the dataclass)
    explanations/model-card.md the shipped model's card, as it ships
    records/<name>.md          each folder of benchmarks/results/: its README and its small files
    explanations/accuracy.md, explanations/performance.md   the records, newest first, with their first lines
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.cli.common import EXIT_CODES  # noqa: E402
from dermseg_deploy.model.metadata import METADATA_FIELDS  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ACCURACY_PREFIXES = ("accuracy", "quality", "recipe", "long-run", "fp16-emulation")
COPIED_SUFFIXES = {".png", ".jpg", ".json", ".csv", ".txt", ".md", ".jsonl"}
MAX_COPIED_BYTES = 2_000_000
IMAGES = {"report-page.jpg": RESULTS / "pages-2026-12-06" / "report-page.jpg",
          "serve-page.jpg": RESULTS / "pages-2026-12-06" / "serve-page.jpg",
          "bench-cpu.png": RESULTS / "new-user-cpu-2026-11-27" / "bench-cpu.png",
          "predicted-jaccard.png": RESULTS / "quality-2026-12-08" / "predicted-jaccard-reporting.png",
          "web-page.jpg": RESULTS / "web-page-2026-12-08" / "web-page.jpg"}


def exit_codes_page() -> str:
    rows = "\n".join(f"| {code} | {meaning} |" for code, meaning in EXIT_CODES)
    return ("# Exit codes and errors\n\nEvery command exits with one of these codes (`dermseg_deploy/cli/common.py`), and "
            "says why in one line on stderr, `error: ...`; only an internal error (a bug) prints a traceback, and only "
            "with `--debug` (or `DERMSEG_DEBUG=1`) where it concerns one image.\n\n| code | meaning |\n|---|---|\n"
            f"{rows}\n\nLibrary code raises typed errors (`dermseg_deploy.errors`): `UserError` and its `ModelFileError` "
            "(exit 2), `InputImageError` (one input: a failed row, the run goes on), `CheckFailedError` (3), "
            "`BackendUnavailableError` (4), `InferenceError` (70).\n")


def metadata_page() -> str:
    rows = "\n".join(f"| `{name}` | {kind} | {meaning} |" for name, kind, meaning in METADATA_FIELDS)
    return ("# Model metadata\n\nEvery model file carries its input spec: in a checkpoint, as JSON under the key "
            "`dermseg.metadata` in an ONNX file's `metadata_props`, under `rt_info/dermseg/metadata` in an OpenVINO "
            "IR, and in a TensorRT plan's sidecar `model.plan.json`. Every field is checked before it is used "
            "(`dermseg_deploy/model/schema.py`), and the JSON is read within numbered limits (4 MiB, 32 levels, "
            "20-digit integers, no NaN: `dermseg_deploy/util/bounded_json.py`).\n\n| field | type | meaning |\n"
            f"|---|---|---|\n{rows}\n")


def record_page(folder: Path) -> str:
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {folder.name}\n"
    files = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        relative = path.relative_to(folder)
        if path.suffix.lower() in COPIED_SUFFIXES and path.stat().st_size <= MAX_COPIED_BYTES:
            with mkdocs_gen_files.open(f"records/{folder.name}/{relative}", "wb") as target:
                target.write(path.read_bytes())
            files.append(f"- [{relative}]({folder.name}/{relative})")
        else:
            files.append(f"- `{relative}` ({path.stat().st_size / 1e6:.1f} MB, in the repository)")
    listing = "\n".join(files) or "(no other files)"
    return (f"{text}\n\n---\n\nThe record's folder is `benchmarks/results/{folder.name}/` in the repository. "
            f"Its files:\n\n{listing}\n")


def first_line(folder: Path) -> str:
    readme = folder / "README.md"
    if not readme.is_file():
        return folder.name
    heading = readme.read_text(encoding="utf-8").splitlines()[0]
    return heading.lstrip("# ").strip() or folder.name


def records_index(title: str, intro: str, folders: list[Path]) -> str:
    rows = "\n".join(f"- [{folder.name}](../records/{folder.name}.md): {first_line(folder)}" for folder in folders)
    return f"# {title}\n\n{intro}\n\n{rows}\n"


folders = sorted((p for p in RESULTS.iterdir() if p.is_dir()), key=lambda p: p.name.rsplit("-", 3)[-3:], reverse=True)
for folder in folders:
    with mkdocs_gen_files.open(f"records/{folder.name}.md", "w") as page:
        page.write(record_page(folder))
accuracy = [f for f in folders if f.name.startswith(ACCURACY_PREFIXES)]
performance = [f for f in folders if f not in accuracy]
with mkdocs_gen_files.open("explanations/accuracy.md", "w") as page:
    page.write(records_index("Accuracy records", "What each model and recipe scored, with the commands that measure "
                             "it, newest first; each record is a folder of `benchmarks/results/`.", accuracy))
with mkdocs_gen_files.open("explanations/performance.md", "w") as page:
    page.write(records_index("Performance records", "Speed, memory and footprint measurements, with their machine and "
                             "command, newest first.", performance))
with mkdocs_gen_files.open("reference/exit-codes.md", "w") as page:
    page.write(exit_codes_page())
with mkdocs_gen_files.open("reference/metadata.md", "w") as page:
    page.write(metadata_page())
with mkdocs_gen_files.open("explanations/model-card.md", "w") as page:
    page.write((ROOT / "dermseg_deploy" / "models" / "MODEL_CARD.md").read_text(encoding="utf-8"))
for name, source in IMAGES.items():
    with mkdocs_gen_files.open(f"images/{name}", "wb") as target:
        target.write(source.read_bytes())
