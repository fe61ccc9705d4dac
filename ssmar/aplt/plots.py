"""The APLT diagnostics figure: does offline pseudo-labelling beat the classifier's own labels?"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def plot_rounds(rounds: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Accuracy and coverage of the offline pseudo-labels per round, beside the linear head's
    confident (FixMatch-style) labels of the same frozen model at equal coverage."""
    from ssmar.runtime.io import pyplot, save_figure

    plt = pyplot()

    numbers = [r["round"] for r in rounds]

    def series(key: str) -> list[float]:
        return [100 * r[key] if r.get(key) is not None else float("nan") for r in rounds]

    fig, (acc_ax, cov_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    acc_ax.plot(numbers, series("accuracy"), "o-", label="APLT offline labels (kept)")
    acc_ax.plot(numbers, series("classifier_accuracy_at_equal_coverage"), "s--",
                label="classifier confidence, equal coverage")
    acc_ax.plot(numbers, series("accuracy_unscreened"), ":", color="grey", label="k-means, all unlabelled")
    acc_ax.set_xlabel("offline round")
    acc_ax.set_ylabel("pseudo-label accuracy (%)")
    acc_ax.legend(fontsize=8)
    cov_ax.plot(numbers, series("coverage"), "o-", label="APLT kept")
    cov_ax.plot(numbers, series("classifier_threshold_coverage"), "s--", label="classifier >= threshold")
    cov_ax.plot(numbers, series("purity"), "^:", label="cluster purity")
    cov_ax.set_xlabel("offline round")
    cov_ax.set_ylabel("% of unlabelled clips")
    cov_ax.legend(fontsize=8)
    for ax in (acc_ax, cov_ax):
        ax.grid(alpha=0.3)
        ax.set_xticks(numbers)
    save_figure(fig, path)
