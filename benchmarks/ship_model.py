"""Make the model that ships inside the package from a training run: its INT8 ONNX (checked against FP32 on training
images that did not calibrate it), scored on the reporting half of its split and on the full-resolution pairs, with
the manifest (SHA-256), the model card and the weights' licence, written to dermseg_deploy/models/.

usage: python benchmarks/ship_model.py RUN/model.pt --data ../shared/data/isic2018-task1-512
       --fullres ../shared/data/isic2017-fullres [--name scratch] [--out dermseg_deploy/models] [--work runs/ship]
       python benchmarks/ship_model.py --recalibrate SPLIT.json --data ../shared/data/isic2018-task1-512
       --fullres ../shared/data/isic2017-fullres
The run's split is read from the file beside the checkpoint; --training-command is quoted in the card. Every shipped
file carries the calibration of its predicted Jaccard, fitted on the selection half of its split (`dermseg-eval
--fit-quality`); --recalibrate refits that of the file shipped now (its weights unchanged), and rewrites its SHA-256,
size and figures in the manifest and the card's section on it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.bench.environment import cpu_model  # noqa: E402
from dermseg_deploy.model.checkpoint import load_checkpoint  # noqa: E402
from dermseg_deploy.model.shipped import MANIFEST_NAME  # noqa: E402
from dermseg_deploy.util.digest import file_sha256  # noqa: E402

LICENCE = """The weights in this folder (the .onnx file) were learned from the ISIC 2018 Task 1 training data, which its
providers license under Creative Commons Attribution-NonCommercial 4.0 International (CC BY-NC 4.0,
https://creativecommons.org/licenses/by-nc/4.0/). The weights are therefore distributed under CC BY-NC 4.0 too:
non-commercial use only, with attribution. They are not covered by the Apache-2.0 licence of dermseg's code.

Attribution: N. Codella et al., "Skin Lesion Analysis Toward Melanoma Detection 2018: A Challenge Hosted by the
International Skin Imaging Collaboration (ISIC)", arXiv:1902.03368; P. Tschandl et al., "The HAM10000 dataset, a large
collection of multi-source dermatoscopic images of common pigmented skin lesions", Sci. Data 5, 180161 (2018).

The model is research software. It is not a medical device and must not be used to diagnose anyone.
"""

REPORTING_LABEL = "reporting half of the validation split (ISIC 2018, 512x512)"
FULLRES_LABEL = "the 24 full-resolution ISIC 2017 pairs (up to 4288x2848)"
QUALITY_START, QUALITY_END = "<!-- predicted-jaccard -->", "<!-- /predicted-jaccard -->"


def run(command: list[str]) -> str:
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def evaluate(bin_dir: Path, data: Path, engine: Path, json_path: Path, *extra: str) -> dict[str, Any]:
    run([str(bin_dir / "dermseg-eval"), str(data), "--engine", str(engine), "--device", "cpu", "--json", str(json_path),
         *extra])
    return json.loads(json_path.read_text())


def calibrate(bin_dir: Path, data: Path, split: Path, engine: Path, work: Path) -> None:
    """Fit `engine`'s predicted-Jaccard calibration on the selection half of `split`, written into it in place."""
    run([str(bin_dir / "dermseg-eval"), str(data), "--engine", str(engine), "--device", "cpu", "--ids", str(split),
         "--half", "selection", "--fit-quality", str(engine), "--json", str(work / "selection.json")])


def quality_section(scores: dict[str, dict[str, Any]]) -> str:
    """The card's section on the predicted Jaccard: how it was calibrated and how well it flags failures."""
    rows = []
    for label, result in scores.items():
        quality = result.get("quality") or {}
        if not quality:
            continue
        low, high = quality["auroc_ci95"]
        share = quality["least_confident_failure_share"]
        rows.append(f"| {label} | {quality['images']} | {quality['failures']} | {quality['auroc']:.3f} [{low:.3f}, "
                    f"{high:.3f}] | {quality['mae']:.3f} | {quality['least_confident_failures']} ({100 * share:.0f}%) |")
    table = "\n".join(rows)
    return f"""{QUALITY_START}
- **Predicted Jaccard**: every mask's, from the model's own logits (`dermseg_deploy/core/quality.py`), calibrated on
  the selection half of its split (no image below was used). Failures are masks with Jaccard below 0.65:

| images | count | failures | AUROC for a failure [95% interval] | mean absolute error | failures among the 10% least confident |
|---|---|---|---|---|---|
{table}
{QUALITY_END}
"""


def card(name: str, checkpoint: Any, training: str, int8_line: str, scores: dict[str, dict[str, Any]], sha: str,
         size_bytes: int) -> str:
    config = checkpoint.provenance["config"]
    size = checkpoint.metadata.size_px
    stages = " then ".join(f"{s['size_px']} px x {s['epochs']} epochs" for s in config["stages"])
    rows = []
    for label, result in scores.items():
        border = result.get("boundary") or {}
        rows.append(f"| {label} | {result['images']} | {result['jaccard']:.4f} | {result['thresholded_jaccard']:.4f} | "
                    f"{result['dice']:.4f} | {border.get('contour_distance_px', float('nan')):.1f} | "
                    f"{border.get('boundary_f1', float('nan')):.4f} |")
    table = "\n".join(rows)
    return f"""# Model card: {name}

The model dermseg uses when no model file is given (`dermseg-run`, `dermseg-eval`, `dermseg-serve`,
`Segmenter.open()`). **Research use only; not a medical device; not for diagnosis.** Weights: CC BY-NC 4.0
(`LICENSE` here), unlike dermseg's code (Apache-2.0).

- **Network**: the ResNet34-UNet of Raghunath and Nofallah (ISIC 2018 Task 1), 41 M parameters, input
  {size}x{size}, output logits; mask = probability > {checkpoint.metadata.threshold}.
- **File**: `{name}.int8.onnx`, {size_bytes / 1e6:.1f} MB, SHA-256 `{sha}` (checked on every load). INT8 by ONNX
  Runtime's static quantization (QDQ, weights per channel): {int8_line}
- **Training**: from random weights (no ImageNet download is possible where it was made), on 2 CPU cores:
  `{training}`; {stages}; BCE + soft Dice; Adam with one-cycle rates; augmentation by the 8 dihedral flips, rotation
  and lighting. Epochs were chosen on the selection half of the 500-image validation split; the reporting half
  below was not looked at while choosing.
- **Data**: {checkpoint.metadata.train_data}: the ISIC 2018 Task 1 training pairs, centre-cropped and resized to
  512x512 by a third party. Left out of training: the 24 ISIC 2017 validation images kept at full resolution
  (and so the 8 images shipped as samples), listed in `dermseg_train/heldout_ids.txt`, so that the scores on them
  are scores on unseen images.
- **Scores** of this file (INT8, ONNX Runtime on the CPU, plain masks), ISIC scoring; borders in pixels of the
  original images, boundary F1 at 0.75% of the image diagonal:

| images | count | Jaccard | thresholded Jaccard | Dice | contour distance (px) | boundary F1 |
|---|---|---|---|---|---|---|
{table}

{quality_section(scores)}
- **Known limits**: a {checkpoint.metadata.size_px} px input, so borders are coarse on large photographs; lesions
  covering the whole image (the paper's failure case); other imaging (clinical photographs, other dermoscopes) is
  untested. The paper's recipe with ImageNet weights scores a raw Jaccard of 0.86.
"""


def recalibrate(bin_dir: Path, split: Path, data: Path, fullres: Path, out: Path, work: Path) -> int:
    """Refit the shipped file's calibration (its weights unchanged) and rewrite its manifest's SHA-256, size and
    figures, and its card's section on the predicted Jaccard."""
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    engine = out / manifest["file"]
    if file_sha256(engine) != manifest["sha256"]:
        raise SystemExit(f"{engine}: its SHA-256 differs from the manifest's: restore the shipped file first")
    calibrate(bin_dir, data, split, engine, work)
    scores = {REPORTING_LABEL: evaluate(bin_dir, data, engine, work / "reporting.json", "--ids", str(split), "--half",
                                        "reporting"),
              FULLRES_LABEL: evaluate(bin_dir, fullres, engine, work / "fullres.json")}
    for label, result in scores.items():  # the weights are the manifest's: its scores stay, with the CPU they came from
        kept = manifest["scores"].setdefault(label, {})
        kept["quality"] = result.get("quality") | {"measured_on": cpu_model(), "jaccard_there": result["jaccard"]}
        print(f"{label}: Jaccard {result['jaccard']:.4f} on {cpu_model()} (the manifest's: {kept.get('jaccard')})")
    old_sha, old_size = manifest["sha256"], manifest["size_bytes"]
    manifest |= {"sha256": file_sha256(engine), "size_bytes": engine.stat().st_size}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    card_path = out / manifest["card"]
    text = card_path.read_text().replace(old_sha, manifest["sha256"])
    text = text.replace(f"{old_size / 1e6:.1f} MB", f"{manifest['size_bytes'] / 1e6:.1f} MB")
    section = quality_section(scores)
    if QUALITY_START in text:
        text = text[: text.index(QUALITY_START)] + section + text[text.index(QUALITY_END) + len(QUALITY_END) + 1 :]
    else:
        text = text.replace("- **Known limits**", section + "- **Known limits**", 1)
    card_path.write_text(text)
    print(f"recalibrated {engine}; {MANIFEST_NAME} and {card_path.name} rewritten")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, nargs="?")
    parser.add_argument("--recalibrate", type=Path, default=None, metavar="SPLIT",
                        help="Refit the shipped file's calibration on this split's selection half, and nothing else.")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--fullres", type=Path, required=True)
    parser.add_argument("--name", default="scratch")
    parser.add_argument("--out", type=Path, default=ROOT / "dermseg_deploy" / "models")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ship")
    parser.add_argument("--training-command", default="dermseg-train --preset scratch --validate-on selection "
                        "--data ../shared/data/isic2018-task1-512 --out model.pt")
    args = parser.parse_args(argv)
    bin_dir = Path(sys.executable).parent
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if args.recalibrate is not None:
        return recalibrate(bin_dir, args.recalibrate, args.data, args.fullres, args.out, work)
    if args.checkpoint is None:
        parser.error("give a checkpoint to ship, or --recalibrate SPLIT")
    split = args.checkpoint.with_name(args.checkpoint.stem + ".split.json")
    run([sys.executable, str(ROOT / "benchmarks" / "split_folders.py"), str(split), str(args.data), str(work)])
    model = work / f"{args.name}.pt"
    shutil.copy(args.checkpoint, model)
    exported = run([str(bin_dir / "dermseg-export"), str(model), "--formats", "onnx-int8", "--calib", str(work / "calib")])
    int8_line = next(line for line in exported.splitlines() if line.startswith("wrote") and ".int8.onnx" in line)
    int8_line = int8_line.split("; ", 1)[1].replace(str(work / "calib"), "the run's training images "
                                                     "(benchmarks/split_folders.py)")
    engine = work / f"{args.name}.int8.onnx"
    calibrate(bin_dir, args.data, split, engine, work)
    scores = {
        REPORTING_LABEL: evaluate(
            bin_dir, args.data, engine, work / "reporting.json", "--ids", str(split), "--half", "reporting"),
        FULLRES_LABEL: evaluate(bin_dir, args.fullres, engine, work / "fullres.json"),
    }
    checkpoint = load_checkpoint(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(engine, args.out / engine.name)
    sha, size = file_sha256(args.out / engine.name), (args.out / engine.name).stat().st_size
    reporting = scores[REPORTING_LABEL]
    summary = (f"{checkpoint.metadata.size_px} px, trained from scratch on 2 CPU cores, Jaccard "
               f"{reporting['jaccard']:.3f} on held-out ISIC 2018 images")
    manifest = {"file": engine.name, "sha256": sha, "size_bytes": size, "licence": "CC BY-NC 4.0 (LICENSE)",
                "card": "MODEL_CARD.md", "summary": summary, "input_size_px": checkpoint.metadata.size_px,
                "scores": {label: {k: v for k, v in result.items() if k not in ("per_image_csv", "source", "data")}
                           for label, result in scores.items()}}
    (args.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    (args.out / "MODEL_CARD.md").write_text(card(args.name, checkpoint, args.training_command, int8_line, scores, sha, size))
    (args.out / "LICENSE").write_text(LICENCE)
    print(f"wrote {args.out}: {engine.name} ({size / 1e6:.1f} MB), {MANIFEST_NAME}, MODEL_CARD.md, LICENSE")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
