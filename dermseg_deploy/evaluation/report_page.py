"""The evaluation report's HTML: one page with its style and its small sorting script inline (nothing fetched)."""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..util.printable import printable
from ..version import __version__
from .metrics import SCORE_NAMES, THRESHOLDED_JACCARD_CUTOFF
from .scoring import LARGE_LESION_FRACTION, ImageEvaluation

SCORE_LABELS = {"jaccard": "Jaccard", "thresholded_jaccard": "thresholded Jaccard", "dice": "Dice",
                "sensitivity": "sensitivity", "specificity": "specificity"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; } tr:nth-child(even) td { background: #f6f6f6; }
table.sortable th { cursor: pointer; user-select: none; background: #eef; } table.sortable th:hover { background: #dde; }
.settings td { text-align: left; } .note { color: #8a4b00; }
.pictures { display: flex; flex-wrap: wrap; gap: 0.8em; } figure { margin: 0; }
figure img { display: block; border: 1px solid #ccc; } figcaption { font-size: 0.85em; margin-top: 0.2em; }
.review { color: #b35900; font-weight: bold; }
.legend span { display: inline-block; width: 1em; height: 0.6em; margin: 0 0.3em 0 0.8em; }
.failed { color: #b00; } .pass { color: #060; }
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("data-order") !== "asc";
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("data-order"); });
      th.setAttribute("data-order", ascending ? "asc" : "desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var numeric = th.getAttribute("data-type") === "number";
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-value"), y = b.cells[column].getAttribute("data-value");
        var order = numeric ? parseFloat(x) - parseFloat(y) : (x < y ? -1 : x > y ? 1 : 0);
        if (order === 0) { order = a.cells[0].textContent < b.cells[0].textContent ? -1 : 1; }
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


@dataclass(frozen=True)
class PageContent:
    summary: dict[str, Any]
    details: dict[str, str]
    """The model file and its settings (size, TTA, post-processing, backend, precision), or the masks folder."""
    ranked: Sequence[ImageEvaluation]
    worst: Sequence[ImageEvaluation]
    sample: Sequence[ImageEvaluation]
    pictures: dict[str, str]
    histogram: str | None
    histogram_missing: str | None
    panel_px: int
    csv_name: str
    notes: Sequence[str]
    scatter: str | None = None
    """The predicted-against-real Jaccard figure, where the masks had a predicted Jaccard."""


def _e(value: object) -> str:
    """Text for the page: control characters and the raw bytes of names that are not UTF-8 as `\\xNN`, then
    HTML-escaped."""
    return html.escape(printable(str(value)), quote=True)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def anchor(image_id: str) -> str:
    return "img-" + "".join(c if c.isalnum() or c in "_-" else "_" for c in image_id)


def _scores_table(summary: dict[str, Any]) -> str:
    header = "".join(f"<th>{label}</th>" for label in SCORE_LABELS.values())
    rows = []
    for label, key in (("all images", "all"),
                       (f"lesions over {LARGE_LESION_FRACTION:.0%} of the image", "large_lesions")):
        means = summary.get(key, {})
        cells = "".join(f"<td>{_number(means.get(name))}</td>" for name in SCORE_NAMES)
        rows.append(f"<tr><td>{_e(label)}</td>{cells}<td>{means.get('images', 0)}</td></tr>")
    border = summary.get("boundary")
    border_html = ("" if not border else
                   f"<p id='borders'>Borders ({border['images']} images, in pixels of the original images): contour "
                   f"distance {border['contour_distance_px']:.2f} px, boundary F1 {border['boundary_f1']:.4f} (tolerance "
                   f"{100 * border['tolerance_of_diagonal']:.2f}% of the image diagonal).</p>")
    failed = summary.get("failed", {})
    failed_rows = "".join(f"<li><code>{_e(image_id)}</code>: {_e(error)}</li>" for image_id, error in failed.items())
    failed_html = (f"<p class='failed'>{len(failed)} failed image(s), counted 0:</p><ul>{failed_rows}</ul>" if failed
                   else "<p class='pass'>failed images: 0</p>")
    return (f"<table id='scores'><thead><tr><th></th>{header}<th>images</th></tr></thead><tbody>{''.join(rows)}"
            f"</tbody></table>{border_html}{failed_html}")


def _settings_table(details: dict[str, str]) -> str:
    rows = "".join(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in details.items())
    return f"<table class='settings'>{rows}</table>"


def _figures(evaluations: Sequence[ImageEvaluation], pictures: dict[str, str], panel_px: int) -> str:
    figures = []
    for e in evaluations:
        if e.image_id not in pictures:
            continue
        if e.score is None:
            caption = f"<b>{_e(e.image_id)}</b>: failed ({_e(e.error)}), counted 0"
        else:
            caption = (f"<b>{_e(e.image_id)}</b>: Jaccard {e.score.jaccard:.4f}, thresholded "
                       f"{e.score.thresholded_jaccard:.4f}, Dice {e.score.dice:.4f}")
            if e.quality is not None:
                flag = " <span class='review'>flagged for review</span>" if e.quality.review else ""
                caption += f"; predicted {e.quality.predicted_jaccard:.2f}{flag}"
        jaccard = e.score.jaccard if e.score is not None else 0.0
        figures.append(f"<figure id='{anchor(e.image_id)}' data-id='{_e(e.image_id)}' data-jaccard='{jaccard:.6f}'>"
                       f"<img src='{_e(pictures[e.image_id])}' alt='{_e(e.image_id)}: image, ground truth, outlines'"
                       f"><figcaption>{caption}</figcaption></figure>")
    if not figures:
        return "<p>none</p>"
    return f"<div class='pictures'>{''.join(figures)}</div>"


def _image_table(ranked: Sequence[ImageEvaluation], pictures: dict[str, str]) -> str:
    head = ("<tr><th data-type='text'>image</th>" + "".join(f"<th data-type='number'>{label}</th>"
                                                            for label in SCORE_LABELS.values())
            + "<th data-type='number'>contour distance px</th><th data-type='number'>boundary F1</th>"
            + "<th data-type='number'>lesion share of truth</th><th data-type='text'>error</th></tr>")
    rows = []
    for e in ranked:
        name = _e(e.image_id)
        link = f"<a href='#{anchor(e.image_id)}'>{name}</a>" if e.image_id in pictures else name
        values = [getattr(e.score, n) for n in SCORE_NAMES] if e.score is not None else [0.0] * len(SCORE_NAMES)
        cells = "".join(f"<td data-value='{v:.6f}'>{v:.4f}</td>" for v in values)
        if e.boundary is not None:
            cells += (f"<td data-value='{e.boundary.contour_distance_px:.6f}'>{e.boundary.contour_distance_px:.1f}</td>"
                      f"<td data-value='{e.boundary.boundary_f1:.6f}'>{e.boundary.boundary_f1:.4f}</td>")
        else:
            cells += "<td data-value='-1'></td><td data-value='-1'></td>"
        rows.append(f"<tr><td data-value='{name}'>{link}</td>{cells}<td data-value='{e.truth_fraction:.6f}'>"
                    f"{e.truth_fraction:.3f}</td><td data-value='{_e(e.error or '')}'>{_e(e.error or '')}</td></tr>")
    return f"<table id='images' class='sortable'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _quality_section(content: PageContent) -> str:
    quality = content.summary.get("quality")
    if not quality:
        return ""
    flagged = sum(1 for e in content.ranked if e.quality is not None and e.quality.review)
    figure = (f"<img id='quality-scatter' src='{_e(content.scatter)}' alt='predicted against real Jaccard'>"
              if content.scatter else "")
    share = quality["least_confident_failure_share"]
    return (f"<h2>Predicted Jaccard</h2><p id='quality'>{_e(content.details.get('predicted Jaccard', ''))}. AUROC for "
            f"J &lt; 0.65: {quality['auroc']:.3f} [{quality['auroc_ci95'][0]:.3f}, {quality['auroc_ci95'][1]:.3f}]; "
            f"mean absolute error {quality['mae']:.3f}; {flagged} mask(s) flagged for review (below "
            f"{quality['review_below']:g}), holding {quality['flagged_failures']} of the {quality['failures']} "
            f"failures; the 10% least confident hold {quality['least_confident_failures']}"
            + (f" ({100 * share:.0f}%)" if quality["failures"] else "") + ".</p>" + figure)


def render_page(content: PageContent) -> str:
    """The whole page as one string."""
    images = content.summary.get("all", {}).get("images", 0)
    if content.histogram is not None:
        histogram = (f"<img id='histogram' src='{_e(content.histogram)}' alt='histogram of per-image Jaccard'>")
    else:
        histogram = f"<p class='note' id='histogram-missing'>The histogram is missing: {_e(content.histogram_missing)}.</p>"
    notes = "".join(f"<p class='note'>{_e(note)}</p>" for note in content.notes)
    legend = ("<p class='legend'>Each picture: the image | the ground truth | both outlines over the image"
              "<span style='background:#f0f'></span>ground truth<span style='background:#0f0'></span>prediction. "
              f"Pictures are downscaled copies, at most {content.panel_px} px on the longer side.</p>")
    written = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dermseg evaluation report</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<h1>dermseg evaluation report</h1>
<p>{images} images, scored as the ISIC 2018 Task 1 scorer does (masks binarised at &gt; 128; thresholded Jaccard is 0
below {THRESHOLDED_JACCARD_CUTOFF}). Written {written} by dermseg {__version__}.</p>
<h2>Scores</h2>
{_scores_table(content.summary)}
<h2>Model and settings</h2>
{_settings_table(content.details)}
<h2>Jaccard per image</h2>
{histogram}
{_quality_section(content)}
<section id="worst">
<h2>The {len(content.worst)} worst images</h2>
{legend}
{notes}
{_figures(content.worst, content.pictures, content.panel_px)}
</section>
<section id="sample">
<h2>A random sample of {len(content.sample)} other images</h2>
{_figures(content.sample, content.pictures, content.panel_px)}
</section>
<h2>Every image</h2>
<p>Click a column to sort it. The same rows, sorted by Jaccard then id, are in
<a href="{_e(content.csv_name)}">{_e(content.csv_name)}</a>.</p>
{_image_table(content.ranked, content.pictures)}
<script>{SORT_SCRIPT}</script>
</body>
</html>
"""
