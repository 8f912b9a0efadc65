"""Fuzzing extract() with byte-level mutations of real JPEG, TIFF, PNG, WebP and HEIC headers.

Properties, for every mutated file (see fuzzing.py for seeds, mutations and the worker):
  * extract() returns a record and never needs its last-resort `except Exception` net;
  * it answers within PHOTOCAT_FUZZ_TIMEOUT seconds (5; the worker is killed beyond that);
  * one case never raises the worker's peak RSS by more than 256 MiB, and the whole run does not
    grow it by more than 64 MiB (a leak);
  * the record is well formed (fuzzing.record_problems) and the catalog stores it.

Every test session runs CASES_PER_FORMAT cases per format, derandomized: the same cases each
time, so CI is deterministic. A long run draws fresh random cases:

    PHOTOCAT_FUZZ_CASES=20000 .venv/bin/pytest tests/test_fuzz.py -k mutations
    (PHOTOCAT_FUZZ_SEED=N repeats one such run; fuzz/run.py --minutes 30 runs unattended)

A failing case is shrunk by hypothesis and written to $PHOTOCAT_FUZZ_OUT (default: a temp dir,
named in the failure); minimised, it belongs in tests/data/fuzz/ (see the README there).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzzing import (
    FORMATS,
    GROWTH_LIMIT_MIB,
    KINDS,
    U32,
    Mutation,
    Runner,
    Seed,
    ifd_fields,
    mutate,
    record_problems,
    seeds,
    segments,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st

from catalog.extract import extract
from catalog.record import PhotoRecord
from catalog.store import FileEntry, open_catalog

LONG_RUN = os.environ.get("PHOTOCAT_FUZZ_CASES")
CASES_PER_FORMAT = int(LONG_RUN or 300)
RUN_SEED = os.environ.get("PHOTOCAT_FUZZ_SEED")
REGRESSIONS = Path(__file__).parent / "data" / "fuzz"
OUT = Path(os.environ.get("PHOTOCAT_FUZZ_OUT") or tempfile.gettempdir()) / "photocat-fuzz"

MUTATIONS = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, U32), st.integers(0, U32)),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    worker = Runner()
    yield worker
    worker.close()


def _save(seed: Seed, mutations: list[Mutation], data: bytes, problems: list[str]) -> Path:
    """Keep the (latest, i.e. most shrunk) failing file of a format, with how to rebuild it."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"failing-{seed.fmt.lower()}{seed.suffix}"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(
        f"seed: {seed.name}\nmutations: {mutations!r}\n\n" + "\n".join(problems) + "\n"
    )
    return path


def _store_all(db: str, records: list[PhotoRecord]) -> None:
    """Every record the fuzzer produced goes into a real catalog (SQLite or PostgreSQL): the
    column types and widths are part of the contract too."""
    with open_catalog(db) as catalog:
        root = catalog.root_id("/fuzz")
        assert root is not None
        entries = [FileEntry(root, f"{i}.bin", i, i, r, None) for i, r in enumerate(records)]
        for start in range(0, len(entries), 200):
            batch = entries[start : start + 200]
            try:
                catalog.upsert(batch)
            except Exception:
                for entry in batch:  # name the record the database refused
                    try:
                        catalog.upsert([entry])
                    except Exception as exc:
                        pytest.fail(f"the catalog refused a fuzzed record: {exc}\n{entry.record}")
                raise


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutations_keep_the_record_contract(fmt: str, runner: Runner, db: str) -> None:
    pool = seeds(fmt)
    if not pool:
        pytest.fail(f"no {fmt} seed found in the corpus (fuzzing.SEED_FILES)")
    records: list[PhotoRecord] = []
    before = runner.cases
    by_name = {seed.name: seed for seed in pool}

    @settings(
        max_examples=CASES_PER_FORMAT,
        derandomize=not LONG_RUN,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(name=st.sampled_from(sorted(by_name)), mutations=MUTATIONS)  # a name prints short
    def case(name: str, mutations: list[Mutation]) -> None:
        seed = by_name[name]
        data = mutate(seed.data, mutations)
        outcome = runner.run(data, seed.suffix)
        if outcome.problems:
            saved = _save(seed, mutations, data, outcome.problems)
            pytest.fail(f"{seed.name} + {mutations!r} (saved as {saved}):\n" + outcome.problems[0])
        assert outcome.record is not None
        records.append(outcome.record)

    if RUN_SEED:
        case = fixed_seed(int(RUN_SEED))(case)
    case()
    assert runner.cases - before >= CASES_PER_FORMAT
    assert runner.growth_mib() < GROWTH_LIMIT_MIB, f"worker RSS grew {runner.growth_mib():.0f} MiB"
    _store_all(db, records)


@pytest.mark.parametrize("fmt", FORMATS)
def test_seeds_are_real_headers(fmt: str, runner: Runner) -> None:
    """Each seed is a prefix of a corpus file that still reads as the whole file does."""
    for seed in seeds(fmt):
        outcome = runner.run(seed.data, seed.suffix)
        assert outcome.problems == [], (seed.name, outcome.problems)
        assert outcome.record is not None and outcome.record.error is None, seed.name
        assert outcome.record.format is not None


def test_mutations_are_deterministic_and_reach_the_structure() -> None:
    jpeg = seeds("JPEG")[0]
    assert segments(jpeg.data) and ifd_fields(jpeg.data), "the JPEG seed's APP1 IFDs are found"
    mutations: list[Mutation] = [("entry", 5, 7), ("seg_len", 1, 2), ("flip", 9, 3)]
    assert mutate(jpeg.data, mutations) == mutate(jpeg.data, mutations) != jpeg.data
    for kind in KINDS:  # no mutation breaks on an empty or tiny input
        for data in (b"", b"\xff", jpeg.data[:40]):
            mutate(data, [(kind, U32, U32), (kind, 0, 0)])


def _regressions() -> list[Path]:
    return sorted(p for p in REGRESSIONS.iterdir() if p.is_file() and p.suffix != ".md")


@pytest.mark.parametrize("path", _regressions(), ids=lambda p: p.name)
def test_fuzz_regressions(path: Path, runner: Runner) -> None:
    """Minimised files from earlier fuzzing finds: each held a bug, fixed since."""
    outcome = runner.run(path.read_bytes(), path.suffix)
    assert outcome.problems == []
    assert record_problems(extract(path)) == []  # in this process too


def test_hostile_values_fit_the_catalog_columns(tmp_path: Path, db: str) -> None:
    """Values found by reviewing the record contract against the schema: each one, stored as
    read, made PostgreSQL refuse the whole batch (and so the scan)."""
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational

    exif = Image.Exif()
    exif[0x010F] = "".join(chr(0x4E00 + i) for i in range(300))  # Make: 300 CJK characters
    exif[0x0110] = "M" * 20
    sub = exif.get_ifd(0x8769)
    sub[0x8827] = 4294967295  # ISO as a LONG, beyond INTEGER
    sub[0x9003] = "2020:01:02 03:04:05"
    sub[0x9291] = "1" * 40  # SubSecTimeOriginal wider than its column
    sub[0x829A] = IFDRational(1, 0)  # undefined exposure: NaN in Pillow
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (8, 8)).save(path, exif=exif)
    record = extract(path)
    assert record_problems(record) == []
    assert record.iso is None and record.subsec is None and record.exposure_time is None
    assert record.make is not None and len(record.make) == 255
    assert record.captured_at is not None
    listed = {t.name: t.value for t in record.tags}
    assert len(listed["Make"]) == 300, "the tag listing keeps the value whole"
    _store_all(db, [record])


def test_the_watchdog_reports_hangs_and_crashes(tmp_path: Path) -> None:
    """The worker machinery itself: a case that does not answer in time is a failure, and the
    next case runs in a fresh worker."""
    worker = Runner(timeout=1e-6)
    try:
        outcome = worker.run(b"\xff\xd8\xff", ".jpg")
        assert outcome.problems and outcome.problems[0].startswith("hang")
        worker.timeout = 30
        assert worker.run(b"", ".jpg").problems == []
        assert worker.restarts == 1
    finally:
        worker.close()
