#!/usr/bin/env python3
"""photocat scan against `exiftool -json -n -r` and against the cost of hashing, on one corpus.

    .venv/bin/python benchmarks/scan_vs_exiftool.py --count 5000              # makes the corpus
    .venv/bin/python benchmarks/scan_vs_exiftool.py --count 500 --pixels 4000x3000
    .venv/bin/python benchmarks/scan_vs_exiftool.py --corpus DIR --runs 5

Times, end to end (process start included), each several times, alternating so that a noisy
machine slows both alike, and prints medians:

* `photocat scan DIR --db NEW -q`: a new catalog each run (walk, extraction, hashing, database);
  also with `--hash none`, to show what hashing costs;
* `exiftool -json -n -r DIR > /dev/null`;
* the hash floor: a Python process that SHA-256es every file's bytes on a pool of --workers
  processes (default: all cores), start-up included, as a scan must;
* the unchanged rescan: `photocat scan` again on the catalog of the last run;
* the ratios also run by run (each scan against the ExifTool run and the floor timed beside it),
  whose median a slow minute of a shared machine sways less than it does the medians' ratio;
* the CPU time (user + system, of each command and its worker processes): a run cannot take
  less than its CPU time over the cores, which bounds how near the hash floor a scan can come;
* in-process, photocat's extraction alone (catalog.extract.extract, one process), per photo.

The corpus comes from ../shared/tools/make_corpus.py (--make-corpus to point elsewhere),
cached under --cache (default /tmp/photocat-bench) by count, seed and size. No timing here is
an assertion: the script prints figures and ratios for the Performance section of README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import as_installed  # benchmarks/installed.py

REPO = Path(__file__).resolve().parent.parent
MAKE_CORPUS = REPO.parent / "shared" / "tools" / "make_corpus.py"  # ../shared beside the repo
BIN = Path(sys.executable).parent

HASH_FLOOR = r"""
import hashlib, os, sys
from concurrent.futures import ProcessPoolExecutor

def digest(path):
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
files = [os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs if f.endswith(".jpg")]
with ProcessPoolExecutor(int(sys.argv[2])) as pool:
    n = sum(1 for _ in pool.map(digest, files, chunksize=32))
print(n)
"""


def main() -> None:
    as_installed()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, help="an existing folder of photos (else one is made)")
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pixels", default="1024x768")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each command")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--cache", type=Path, default=Path("/tmp/photocat-bench"))
    p.add_argument("--make-corpus", type=Path, default=MAKE_CORPUS)
    p.add_argument("--no-exiftool", action="store_true")
    p.add_argument(
        "--no-gps",
        action="store_true",
        help="use a copy of the corpus with the GPS IFDs removed (no reverse geocoding work)",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    a = p.parse_args()

    corpus = a.corpus or make_corpus(a)
    if a.no_gps:
        corpus = without_gps(corpus)
    files = [
        os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs if f.lower().endswith(".jpg")
    ]
    n = len(files)
    size = sum(os.path.getsize(f) for f in files)
    warm(files)
    print(f"corpus: {corpus} — {n} JPEGs, {size / 1e6:.0f} MB (mean {size / n / 1e3:.0f} KB)")
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start")

    photocat = str(BIN / "photocat")
    work = Path(tempfile.mkdtemp(prefix="scanbench-"))
    times: dict[str, list[float]] = {"scan": [], "scan_nohash": [], "hash_floor": []}
    if not a.no_exiftool:
        times["exiftool"] = []
    cpu: dict[str, list[float]] = {k: [] for k in times}  # CPU seconds of each timed run

    def run(key: str, cmd: list[str]) -> None:
        wall, used = timed(cmd)
        times[key].append(wall)
        cpu[key].append(used)

    last_db = ""
    try:
        for i in range(a.runs):
            last_db = str(work / f"run{i}.db")
            run("scan", [photocat, "scan", str(corpus), "--db", last_db, "-q"])
            if "exiftool" in times:
                run("exiftool", ["exiftool", "-json", "-n", "-r", str(corpus)])
            db = str(work / f"nohash{i}.db")
            run("scan_nohash", [photocat, "scan", str(corpus), "--db", db, "-q", "--hash", "none"])
            run("hash_floor", [sys.executable, "-c", HASH_FLOOR, str(corpus), str(a.workers)])
            print(f"  run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
        rescan = [
            timed([photocat, "scan", str(corpus), "--db", last_db, "-q"])[0] for _ in range(a.runs)
        ]
        extract_ms = extraction_ms(files)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    figures = {
        "corpus": str(corpus),
        "photos": n,
        "bytes": size,
        "pixels": a.pixels,
        "runs": a.runs,
        "median_s": med | {"rescan_unchanged": statistics.median(rescan)},
        "images_per_s": {k: n / v for k, v in med.items() if k != "hash_floor"},
        "extract_ms_per_photo_one_process": extract_ms,
    }
    print()
    print(f"{'command':<44} {'median s':>9} {'images/s':>9}")
    rows = [
        ("photocat scan (new catalog, SHA-256)", med["scan"]),
        ("photocat scan --hash none", med["scan_nohash"]),
        ("exiftool -json -n -r", med.get("exiftool")),
        (f"SHA-256 of every byte, {a.workers} processes", med["hash_floor"]),
        ("photocat scan, unchanged tree (rescan)", statistics.median(rescan)),
    ]
    for label, value in rows:
        if value is not None:
            print(f"{label:<44} {value:>9.3f} {n / value:>9.0f}")
    print(f"extraction alone, one process: {extract_ms:.3f} ms/photo")
    if "exiftool" in med:
        ratio = med["exiftool"] / med["scan"]
        figures["scan_vs_exiftool"] = ratio
        print(f"photocat scan is {ratio:.1f}x the images/s of exiftool (target >= 15x)")
        paired = [e / s for e, s in zip(times["exiftool"], times["scan"], strict=True)]
        figures["scan_vs_exiftool_paired"] = paired
        print(f"  run by run: median {statistics.median(paired):.1f}x "
              f"({min(paired):.1f}-{max(paired):.1f}x)")  # fmt: skip
    figures["scan_vs_hash_floor"] = med["scan"] / med["hash_floor"]
    print(f"photocat scan takes {figures['scan_vs_hash_floor']:.2f}x the hash floor")
    # Run by run: each scan against the floor timed beside it, so that a slow minute of a shared
    # machine, which slows both, weighs less than in the ratio of the medians.
    paired = [s / f for s, f in zip(times["scan"], times["hash_floor"], strict=True)]
    figures["scan_vs_hash_floor_paired"] = paired
    print(f"  run by run: median {statistics.median(paired):.2f}x "
          f"({min(paired):.2f}-{max(paired):.2f}x)")  # fmt: skip
    # What the cores allow: a run cannot take less than its CPU time spread over every core.
    cpu_med = {k: statistics.median(v) for k, v in cpu.items() if k != "exiftool"}
    cores = os.cpu_count() or 1
    figures["median_cpu_s"] = cpu_med
    print(f"\nCPU seconds (user + system, whole process tree), median; at best / {cores} cores:")
    for k, v in cpu_med.items():
        bound = v / cores
        print(f"  {k:<12} {v:6.2f} s CPU -> at least {bound:.2f} s = "
              f"{bound / med['hash_floor']:.2f}x the hash floor")  # fmt: skip
    figures["scan_cpu_bound_vs_hash_floor"] = cpu_med["scan"] / cores / med["hash_floor"]
    # Where the scan's CPU beyond the floor's goes: hashing costs the scan what it costs the
    # floor, so the rest is what a scan without hashing does (extraction, database, start-up).
    beyond = cpu_med["scan"] - cpu_med["hash_floor"]
    figures["scan_cpu_beyond_floor_s"] = beyond
    print(f"  the scan's CPU beyond the floor's: {beyond:.2f} s; "
          f"scan --hash none's: {cpu_med['scan_nohash']:.2f} s")  # fmt: skip
    if a.json:
        a.json.write_text(json.dumps(figures, indent=1))


def make_corpus(a: argparse.Namespace) -> Path:
    out = a.cache / f"corpus-{a.count}-{a.seed}-{a.pixels}"
    if not (out / "truth.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(a.make_corpus), str(out), "--count", str(a.count)]
        subprocess.run([*cmd, "--seed", str(a.seed), "--pixels", a.pixels], check=True)
    return out


def without_gps(corpus: Path) -> Path:
    """A copy of the corpus whose files have no GPS IFD (made once, next to it)."""
    import piexif

    out = corpus.with_name(corpus.name + "-nogps")
    if (out / "done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(corpus, out)
    for d, _, fs in os.walk(out):
        for f in fs:
            if f.lower().endswith(".jpg"):
                path = os.path.join(d, f)
                exif = piexif.load(path)
                if exif.get("GPS"):
                    exif["GPS"] = {}
                    exif["0th"].pop(piexif.ImageIFD.GPSTag, None)
                    piexif.insert(piexif.dump(exif), path)
    (out / "done").write_text("")
    return out


def warm(files: list[str]) -> None:
    """Read every file once: the figures are for a warm page cache."""
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; CPU is user + system of the command and of every
    process it waited for (photocat's workers, the floor's pool)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def extraction_ms(files: list[str]) -> float:
    sys.path.insert(0, str(REPO))
    from catalog.extract import extract

    for f in files[:50]:
        extract(f)  # imports, caches
    start = time.perf_counter()
    for f in files:
        extract(f)
    return (time.perf_counter() - start) / len(files) * 1000


if __name__ == "__main__":
    main()
