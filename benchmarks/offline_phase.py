"""Cost of one APLT offline round without the feature bank: ss-k-means + thresholds + prototypes.

The round is the library's own (``ssmar.aplt.offline.offline_round`` with the paper's k-means
labeller and per-class mean-distance screen), timed around its labeller.

Each size runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own. The data
are synthetic but clustered like MA-52: K = 52 classes in 7 body-level groups (classes of a
group are close), long-tailed class sizes, a few % labelled with at least one label per
class, so that k-means iterates realistically. Prints a Markdown table and writes
benchmarks/results/offline_phase.json.

    nice -n 10 .venv/bin/python benchmarks/offline_phase.py [--sizes 10000 100000 1000000] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ssmar.aplt.diagnostics import pseudo_label_quality
from ssmar.aplt.labellers import KMeansLabeller, make_labeller
from ssmar.aplt.offline import offline_round
from ssmar.aplt.prototypes import prototype_drift
from ssmar.aplt.screens import make_screen
from ssmar.aplt.ss_kmeans import semi_supervised_kmeans
from ssmar.runtime.io import save_json

RESULTS = Path(__file__).parent / "results" / "offline_phase.json"
GROUPS = 7
SCATTER_RANK = 16


def synthetic_bank(num: int, dim: int, num_classes: int, labelled_fraction: float, noise: float, seed: int,
                   chunk_size: int = 65536) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L2-normalised features [num, dim], labels (-1 = unlabelled) and true classes, built chunk by chunk."""
    gen = torch.Generator().manual_seed(seed)
    # class offsets and scatter share one low-rank subspace, as in a trained embedding, so classes overlap
    subspace = torch.linalg.qr(torch.randn(dim, SCATTER_RANK, generator=gen))[0].T  # [rank, dim] orthonormal
    group_centres = F.normalize(torch.randn(GROUPS, dim, generator=gen), dim=1)
    offsets = F.normalize(torch.randn(num_classes, SCATTER_RANK, generator=gen), dim=1) @ subspace
    class_centres = F.normalize(group_centres[torch.arange(num_classes) % GROUPS] + offsets, dim=1)
    frequency = 1.0 / torch.arange(1, num_classes + 1).float() ** 0.8  # long tail
    true = torch.multinomial(frequency, num, replacement=True, generator=gen)
    features = torch.empty(num, dim)
    for start in range(0, num, chunk_size):
        centres = class_centres[true[start:start + chunk_size]]
        scatter = noise * torch.randn(len(centres), SCATTER_RANK, generator=gen) @ subspace / SCATTER_RANK ** 0.5
        features[start:start + chunk_size] = F.normalize(centres + scatter, dim=1)
    labelled = torch.rand(num, generator=gen) < labelled_fraction
    first_of_class = torch.full((num_classes,), num).scatter_reduce(0, true, torch.arange(num), "amin")
    labelled[first_of_class[first_of_class < num]] = True  # at least one label per class
    labels = torch.where(labelled, true, torch.full_like(true, -1))
    return features, labels, true


class TimedLabeller:
    """A labeller that keeps the wall time of its last call (the k-means part of a round)."""

    def __init__(self, labeller: KMeansLabeller, clock: Callable[[], float]):
        self.labeller, self.clock, self.seconds = labeller, clock, 0.0

    def __call__(self, *args, **kwargs):
        start = self.clock()
        labelling = self.labeller(*args, **kwargs)
        self.seconds = self.clock() - start
        return labelling


def run_round(num: int, args: argparse.Namespace) -> dict:
    """Time one offline round on ``num`` rows in this process and report its peak memory."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    features, labels, true = synthetic_bank(num, args.dim, args.num_classes, args.labelled_fraction,
                                            args.noise, seed=num)
    features, labels = features.to(device), labels.to(device)

    def synced() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    if device.type == "cuda":  # CUDA context and kernels load outside the timing
        semi_supervised_kmeans(features, labels, args.num_classes, max_iter=1)
    kmeans = make_labeller("kmeans", iters=args.max_iter)
    labeller = TimedLabeller(kmeans, synced)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu_start = synced(), time.process_time()
    result = offline_round(features, labels, args.num_classes, labeller, make_screen("paper", policy="mean"),
                           groups=torch.arange(num, device=device))
    end = synced()
    cpu_seconds = time.process_time() - cpu_start
    drift = prototype_drift(result.centres, result.prototypes)
    unlabelled = labels < 0
    quality = pseudo_label_quality(result.assign[unlabelled], result.keep[unlabelled], true.to(device)[unlabelled],
                                   args.num_classes)
    report = {
        "n": num, "labelled": int((labels >= 0).sum()), "iterations": kmeans.iterations,
        "converged": kmeans.converged, "kmeans_s": labeller.seconds,
        "s_per_iteration": labeller.seconds / kmeans.iterations,
        "screen_refine_s": end - start - labeller.seconds, "round_s": end - start, "round_cpu_s": cpu_seconds,
        "rss_before_round_mib": rss_before, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "bank_mib": features.numel() * features.element_size() / 2 ** 20,
        "pl_accuracy_unscreened": quality["accuracy_unscreened"], "pl_accuracy_kept": quality["accuracy"],
        "pl_coverage": quality["coverage"], "mean_drift": float(drift.mean()),
    }
    if device.type == "cuda":
        report["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return report


def markdown(rows: list[dict]) -> str:
    lines = ["| N | labelled | iters | converged | k-means s | s/iter | screen+refine s | round s "
             "| round CPU s | RSS before / peak MiB | bank MiB | PL acc (all / kept) | coverage |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['labelled']:,} | {r['iterations']} | {r['converged']} | {r['kmeans_s']:.2f} "
                     f"| {r['s_per_iteration']:.3f} | {r['screen_refine_s']:.2f} | {r['round_s']:.2f} "
                     f"| {r['round_cpu_s']:.1f} | {r['rss_before_round_mib']:.0f} / {r['peak_rss_mib']:.0f} | {r['bank_mib']:.0f} "
                     f"| {r['pl_accuracy_unscreened']:.3f} / {r['pl_accuracy_kept']:.3f} | {r['pl_coverage']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--num-classes", type=int, default=52)
    parser.add_argument("--labelled-fraction", type=float, default=0.03)
    parser.add_argument("--noise", type=float, default=1.0, help="within-class scatter (norm relative to the centre's)")
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(run_round(args.worker, args)))
        return
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    for num in args.sizes:
        worker = [sys.executable, __file__, *_drop_sizes(sys.argv[1:]), "--worker", str(num)]
        done = subprocess.run(worker, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"benchmark worker for N={num} failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"N={num:,}: {rows[-1]['round_s']:.2f} s", file=sys.stderr, flush=True)
    table = markdown(rows)
    print(table)
    setup = {k: v for k, v in vars(args).items() if k not in ("worker", "out", "sizes")}
    setup["load_average_1min_at_end"] = os.getloadavg()[0]  # other jobs on the machine inflate timings
    save_json({"setup": setup, "torch": torch.__version__, "results": rows, "table": table}, args.out)


def _drop_sizes(argv: list[str]) -> list[str]:
    """Command-line arguments minus the --sizes list (workers get one size each)."""
    kept, skipping = [], False
    for arg in argv:
        if arg.startswith("--"):
            skipping = arg.split("=")[0] == "--sizes"
        if not skipping:
            kept.append(arg)
    return kept


if __name__ == "__main__":
    main()
