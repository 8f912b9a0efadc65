"""Long fuzzing runs of extract(): the seeds, mutations and checks of tests/test_fuzz.py, drawn
with a plain RNG for as long as asked, on several workers, collecting every distinct failure.

    .venv/bin/python fuzz/run.py --minutes 30                 # every format, 2 workers
    .venv/bin/python fuzz/run.py --cases 100000 --jobs 4 --formats JPEG TIFF --seed 7

Each distinct failure (by signature: first problem line and innermost frame) is minimised and
written to --out as NAME.EXT + NAME.txt (seed, mutations, problems). Copy the ones that found a
bug to tests/data/fuzz/ once fixed. Needs the shared corpus (PHOTOCAT_CORPUS). Exit status 1 when
any case failed or a worker's memory grew past the bound.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import (  # found through the sys.path entry above
    FORMATS,
    GROWTH_LIMIT_MIB,
    Runner,
    Seed,
    minimise,
    mutate,
    random_mutations,
    seeds,
    signature,
)


@dataclass
class Totals:
    cases: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    found: dict[str, Path] = field(default_factory=dict)  # signature -> saved file
    slowest: float = 0.0
    growth_mib: list[float] = field(default_factory=list)
    restarts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fuzz(job: int, args: argparse.Namespace, pool: list[Seed], totals: Totals) -> None:
    rng = random.Random(f"{args.seed}-{job}")
    runner = Runner(args.timeout)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else float("inf")
    quota = args.cases // args.jobs + (job < args.cases % args.jobs) if args.cases else None
    done = 0
    try:
        while time.monotonic() < deadline and (quota is None or done < quota):
            seed = rng.choice(pool)
            mutations = random_mutations(rng)
            data = mutate(seed.data, mutations)
            outcome = runner.run(data, seed.suffix)
            done += 1
            with totals.lock:
                totals.cases[seed.fmt] += 1
            if not outcome.problems:
                continue
            sig = signature(outcome.problems)
            with totals.lock:
                totals.failures[sig] += 1
                known = sig in totals.found
                if not known:
                    totals.found[sig] = Path()  # claimed: minimise once
            if not known:
                small = minimise(
                    data,
                    lambda d, seed=seed, sig=sig: bool(
                        (p := runner.run(d, seed.suffix).problems) and signature(p) == sig
                    ),
                )
                saved = _save(args.out, seed, mutations, small, outcome.problems)
                with totals.lock:
                    totals.found[sig] = saved
                print(f"FAIL {seed.fmt} {saved}\n     {sig}", flush=True)
    finally:
        with totals.lock:
            totals.slowest = max(totals.slowest, runner.slowest)
            totals.growth_mib.append(runner.growth_mib())
            totals.restarts += runner.restarts
        runner.close()


def _save(out: Path, seed: Seed, mutations: list, data: bytes, problems: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    name = f"{seed.fmt.lower()}-{hashlib.sha256(data).hexdigest()[:12]}"
    path = out / (name + seed.suffix)
    path.write_bytes(data)
    (out / (name + ".txt")).write_text(
        f"seed: {seed.name}\nmutations: {mutations!r}\n(then minimised to {len(data)} bytes)\n\n"
        + "\n".join(problems)
        + "\n"
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, help="run this long (default: 10 without --cases)")
    parser.add_argument("--cases", type=int, help="run this many cases in all")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", default=str(random.SystemRandom().randrange(2**32)))
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per case (5)")
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "photocat-fuzz-findings"
    )
    args = parser.parse_args()
    if not args.minutes and not args.cases:
        args.minutes = 10
    pool = [s for fmt in args.formats for s in seeds(fmt)]
    print(f"fuzzing {len(pool)} seeds ({', '.join(args.formats)}), seed {args.seed}", flush=True)
    totals = Totals()
    started = time.monotonic()
    threads = [
        threading.Thread(target=_fuzz, args=(job, args, pool, totals), daemon=True)
        for job in range(args.jobs)
    ]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(60)
        elapsed = time.monotonic() - started
        done = sum(totals.cases.values())
        print(f"{elapsed / 60:6.1f} min  {done} cases  {done / elapsed:.0f}/s", flush=True)
    elapsed = time.monotonic() - started
    report = {
        "seed": args.seed,
        "minutes": round(elapsed / 60, 1),
        "cases": sum(totals.cases.values()),
        "by_format": dict(totals.cases),
        "failures": sum(totals.failures.values()),
        "distinct_failures": {sig: str(path) for sig, path in totals.found.items()},
        "slowest_case_s": round(totals.slowest, 3),
        "worker_rss_growth_mib": [round(g, 1) for g in totals.growth_mib],
        "worker_restarts": totals.restarts,
    }
    print(json.dumps(report, indent=1))
    leaked = any(g > GROWTH_LIMIT_MIB for g in totals.growth_mib)
    return 1 if totals.failures or leaked else 0


if __name__ == "__main__":
    sys.exit(main())
