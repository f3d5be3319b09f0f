"""Contacts as CSV: the columns, one row into a contact's details, and a record splitter.

Pure: no I/O. The import reads a body chunk by chunk through :class:`RecordSplitter`,
which holds at most one record (plus one incomplete line) at a time.

The format:

- UTF-8 (a leading BOM is skipped), RFC 4180: fields are separated by commas and
  records by a newline (CRLF or LF); a field enclosed in double quotes may contain
  commas, newlines and quotes (doubled: ``""``). A quote anywhere else is an error of
  that record only: it is rejected and reading goes on with the next line.
- The first record is a header naming the columns, in any order, case-insensitively:
  ``name`` and ``email`` are required; ``phone``, ``leadSource``, ``status`` and
  ``customFields`` (a JSON object) are optional; ``id``, ``leadHeat`` and ``createdAt``
  (what an export adds) are accepted and ignored, so an exported file imports as is.
  Any other column refuses the whole file.
- An empty cell means "not given": a new contact gets the default (no phone, OTHER,
  UNQUALIFIED, no custom fields), an existing one keeps what it has.
- Blank records (no characters, or only commas) are skipped.
- Formula cells (CSV injection, as OWASP describes it): a spreadsheet runs a cell that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula. The
  export prefixes one ``'`` to every value matching ``^'*[=+\\-@\\t\\r]`` (so
  ``=HYPERLINK(...)`` is written ``'=HYPERLINK(...)``, ``+33 6...`` is ``'+33 6...``,
  ``'=x`` is ``''=x``), and the import strips one leading ``'`` from every value
  matching ``^'+[=+\\-@\\t\\r]``; any other value is left as it is. The two are exact
  inverses (:func:`export_cell`, :func:`import_cell`): an exported file imports back to
  the very values it was made from.
- Line numbers are 1-based physical lines (the header is line 1); a record whose
  quoted field spans lines is numbered by the line it starts on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

from contacts.leads.domain import (
    Contact,
    InvalidContact,
    check_extra,
    normalize_email,
    normalize_name,
    normalize_phone,
)
from gala.contracts.contacts import ContactStatus, LeadSource

IMPORT_COLUMNS: Final = ("name", "email", "phone", "leadSource", "status", "customFields")
EXPORT_COLUMNS: Final = ("id", *IMPORT_COLUMNS, "leadHeat", "createdAt")
REQUIRED_COLUMNS: Final = ("name", "email")
IGNORED_COLUMNS: Final = frozenset({"id", "leadHeat", "createdAt"})
RECORD_MAX_CHARS: Final = 256 * 1024
"""The longest record read; longer means a runaway quoted field (a closing quote missing)."""

_KNOWN = {column.casefold(): column for column in EXPORT_COLUMNS}
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of undecodable bytes
_ENUM_VALUE = TypeVar("_ENUM_VALUE", bound=StrEnum)
_FORMULA_OUT = re.compile(r"^'*[=+\-@\t\r]")
"""A value a spreadsheet would run (after its quotes): the export prefixes a quote."""
_FORMULA_IN = re.compile(r"^'+[=+\-@\t\r]")
"""A cell the export prefixed (a quote before what matched above): the import strips it."""


class InvalidCsv(InvalidContact):
    """The file cannot be read as contacts (its header): nothing of it is imported."""


# --- cells ----------------------------------------------------------------------------


def export_cell(value: str) -> str:
    """A value as the export writes it: one ``'`` before anything a spreadsheet would
    run as a formula (and before quotes that precede such a start), else as it is."""
    return "'" + value if _FORMULA_OUT.match(value) else value


def import_cell(cell: str) -> str:
    """A cell as the import reads it: the inverse of :func:`export_cell`."""
    return cell[1:] if _FORMULA_IN.match(cell) else cell


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record: its fields, or why it cannot be read (``error``, no fields)."""

    line: int
    fields: list[str]
    error: str | None = None


class RecordSplitter:
    """Turns byte chunks, cut anywhere, into complete CSV records with their line numbers.

    ``feed`` each chunk, then ``close`` once at the end of the input. A record longer than
    ``max_chars`` (a quoted field that never closes, or no newline at all) cannot be told
    apart from the rest of the file: it is answered as an error record and the splitter
    stops (``stopped``); everything after it is ignored.
    """

    def __init__(self, max_chars: int = RECORD_MAX_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        self._max = max_chars
        self._rest = ""  # text after the last newline: an incomplete line
        self._next_line = 1
        # the record being read; it spans lines while a quoted field is open
        self._start = 1
        self._fields: list[str] = []
        self._pieces: list[str] = []  # the open quoted field so far
        self._open = False
        self._size = 0
        self._not_utf8 = False
        self.stopped = False

    def feed(self, chunk: bytes) -> list[Record]:
        if self.stopped:
            return []
        text = self._rest + self._decoder.decode(chunk)
        lines = text.split("\n")
        self._rest = lines.pop()
        records: list[Record] = []
        for line in lines:
            self._take(line, records, terminated=True)
            if self.stopped:
                self._rest = ""
                return records
        if self._size + len(self._rest) > self._max:
            if not self._open:
                self._start = self._next_line
            self._overflow(records)
        return records

    def close(self) -> list[Record]:
        """The records left at the end of the input (the last one needs no newline)."""
        if self.stopped:
            return []
        text = self._rest + self._decoder.decode(b"", final=True)
        self._rest = ""
        records: list[Record] = []
        if text:
            self._take(text, records, terminated=False)
        if self._open and not self.stopped:
            self._reject(records, "a quoted field opened on this line is never closed")
        self.stopped = True
        return records

    # --- internals --------------------------------------------------------------------

    def _take(self, line: str, out: list[Record], *, terminated: bool) -> None:
        """One physical line, without its newline."""
        if not self._open:
            self._start = self._next_line
        self._next_line += 1
        if self._size + len(line) > self._max:
            self._overflow(out)
            return
        if _NOT_UTF8.search(line):
            self._not_utf8 = True
        if not self._open and '"' not in line:  # the usual case: no quotes at all
            self._emit(out, line.removesuffix("\r").split(","))
            return
        self._parse(line, out, terminated)

    def _parse(self, line: str, out: list[Record], terminated: bool) -> None:
        pos, end = 0, len(line)
        while True:
            if self._open:
                while True:  # look for the closing quote; "" is a quote inside
                    quote = line.find('"', pos)
                    if quote < 0:
                        self._pieces.append(line[pos:])
                        if terminated:
                            self._pieces.append("\n")
                        self._size += end + 1
                        return  # the field goes on, on the next line
                    if quote + 1 < end and line[quote + 1] == '"':
                        self._pieces.append(line[pos : quote + 1])
                        pos = quote + 2
                        continue
                    self._pieces.append(line[pos:quote])
                    pos = quote + 1
                    break
                self._fields.append("".join(self._pieces))
                self._pieces, self._open = [], False
                if pos == end or line[pos:] == "\r":
                    self._emit(out, self._fields)
                    return
                if line[pos] != ",":
                    self._reject(
                        out, "a closing quote must be followed by a comma or the end of the record"
                    )
                    return
                pos += 1
            # the start of a field
            if pos < end and line[pos] == '"':
                self._open = True
                pos += 1
                continue
            comma = line.find(",", pos)
            value = line[pos:comma] if comma >= 0 else line[pos:].removesuffix("\r")
            if '"' in value:
                self._reject(
                    out,
                    "a quote inside an unquoted field (a field holding quotes must be"
                    ' enclosed in quotes, its quotes doubled: "say ""hi""")',
                )
                return
            self._fields.append(value)
            if comma < 0:
                self._emit(out, self._fields)
                return
            pos = comma + 1

    def _emit(self, out: list[Record], fields: list[str]) -> None:
        not_utf8 = self._not_utf8
        self._reset()
        if not_utf8:
            out.append(Record(self._start, [], "the record is not valid UTF-8 text"))
        elif any(fields):
            out.append(Record(self._start, fields))

    def _reject(self, out: list[Record], reason: str) -> None:
        self._reset()
        out.append(Record(self._start, [], reason))

    def _overflow(self, out: list[Record]) -> None:
        self._reset()
        self.stopped = True
        out.append(
            Record(
                self._start,
                [],
                f"the record runs past {self._max} characters (is a closing quote missing?);"
                " the rest of the file was not read",
            )
        )

    def _reset(self) -> None:
        self._fields, self._pieces = [], []
        self._open = self._not_utf8 = False
        self._size = 0


# --- rows -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One imported row, validated and normalised; ``None`` is "not given"."""

    line: int
    name: str
    email: str
    phone: str | None = None
    lead_source: LeadSource | None = None
    status: ContactStatus | None = None
    custom_fields: dict[str, Any] | None = None


def parse_row(values: Mapping[str, str], line: int = 0) -> ContactRow:
    """A row's cells by column name into a contact's details; InvalidContact says why not."""
    email = values.get("email", "")
    if not email.strip():
        raise InvalidContact("A contact needs an email address.")
    return ContactRow(
        line=line,
        name=normalize_name(values.get("name", "")),
        email=normalize_email(email),
        phone=normalize_phone(values.get("phone")),
        lead_source=_choice(LeadSource, values.get("leadSource"), "leadSource"),
        status=_choice(ContactStatus, values.get("status"), "status"),
        custom_fields=_custom_fields(values.get("customFields")),
    )


def _choice(kind: type[_ENUM_VALUE], value: str | None, column: str) -> _ENUM_VALUE | None:
    if value is None or not value.strip():
        return None
    try:
        return kind(value.strip().upper())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidContact(f"{value!r} is not a {column} (one of {allowed}).") from None


def _not_a_number(constant: str) -> float:
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large a number")
    return number


def _custom_fields(value: str | None) -> dict[str, Any] | None:
    if value is None or not value.strip():
        return None
    try:
        fields = json.loads(value, parse_constant=_not_a_number, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InvalidContact(
            f"customFields is not valid JSON ({exc.msg} at character {exc.pos + 1})."
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidContact(f"customFields is not valid JSON ({exc}).") from None
    checked: dict[str, Any] = check_extra(fields, "customFields")
    return checked


@dataclass(frozen=True)
class Header:
    """The columns of a file, canonically named, in the file's order."""

    columns: tuple[str, ...]

    @classmethod
    def of(cls, record: Record) -> Header:
        """The header record, checked: InvalidCsv (the file is refused) when it is not one."""
        if record.error is not None:
            raise InvalidCsv(f"The header (line {record.line}) cannot be read: {record.error}.")
        columns: list[str] = []
        unknown: list[str] = []
        for cell in record.fields:
            column = _KNOWN.get(cell.strip().casefold())
            if column is None:
                unknown.append(cell)
            columns.append(column or cell)
        expected = "The first line must be a header naming the columns, among: " + ", ".join(
            EXPORT_COLUMNS
        )
        if unknown:
            names = ", ".join(repr(cell) for cell in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise InvalidCsv(f"Unknown column(s) {names}{more}. {expected}.", columns=columns)
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise InvalidCsv(f"The column(s) {', '.join(repeated)} appear more than once.")
        missing = [column for column in REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise InvalidCsv(f"The header lacks the column(s) {', '.join(missing)}. {expected}.")
        return cls(tuple(columns))

    def row(self, record: Record) -> ContactRow:
        """One data record into a contact's details; InvalidContact says why not."""
        if record.error is not None:
            raise InvalidContact(record.error[0].upper() + record.error[1:] + ".")
        if len(record.fields) != len(self.columns):
            raise InvalidContact(
                f"The row has {len(record.fields)} fields; the header has {len(self.columns)}."
            )
        values = {
            column: import_cell(cell)
            for column, cell in zip(self.columns, record.fields, strict=True)
            if column not in IGNORED_COLUMNS
        }
        return parse_row(values, record.line)


# --- export ---------------------------------------------------------------------------


def export_row(contact: Contact) -> list[str]:
    """A contact's cells in the order of :data:`EXPORT_COLUMNS`, formulas neutralised."""
    custom = contact.custom_fields
    values = [
        contact.id,
        contact.name,
        contact.email,
        contact.phone or "",
        contact.lead_source.value,
        contact.status.value,
        "" if custom is None else json.dumps(custom, ensure_ascii=False, separators=(",", ":")),
        str(contact.lead_heat),
        contact.created_at.isoformat(),
    ]
    return [export_cell(value) for value in values]


def to_csv(records: Iterable[Sequence[str]]) -> bytes:
    """RFC 4180 text (CRLF, quotes only where needed), UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    return buffer.getvalue().encode()
