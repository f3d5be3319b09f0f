"""Documents: streamed, type-checked uploads; signed, expiring download links; a
client's electronic signature over the exact bytes."""

import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from billing.documents.blobs import blob_store, sha256_of
from billing.documents.links import signed_link
from billing.settings import BillingSettings, billing_settings
from gala.contracts.billing import DOCUMENT_TOPIC
from gala.contracts.projects import ProjectCreated
from gala.errors import ServiceUnavailable
from gala.identity import Role
from gala.testing import TopicTail, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

PDF = b"%PDF-1.7\n" + b"contract terms " * 200 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
DOCS = "/api/v1/documents"


async def upload(billing, who, content=PDF, content_type="application/pdf", **params):
    params.setdefault("name", "Wedding contract.pdf")

    async def chunks():  # streamed, not one body
        for start in range(0, len(content), 1000):
            yield content[start : start + 1000]

    return await billing.client.post(
        DOCS,
        params=params,
        content=chunks(),
        headers={**billing.headers(who), "Content-Type": content_type},
    )


async def won_with_client(billing):
    venue, admin = billing.new_venue()
    won, _ = await billing.win(venue)
    client = billing.member(venue, Role.CLIENT)
    project = ProjectCreated(
        project_id=f"project-{won.opportunity_id}", venue_id=venue,
        opportunity_id=won.opportunity_id, name="Smith wedding", status="ACTIVE",
        start_date=won.event_date, end_date=won.event_date, client_ids=[client.user_id],
    )  # fmt: skip
    await billing.publish(project, project.project_id)

    async def linked():
        deal = await billing.runtime.store["deals"].find_one({"_id": won.opportunity_id})
        return deal and client.user_id in deal.get("clientIds", [])

    await eventually(linked)
    return venue, admin, client, won, project.project_id


async def test_an_upload_is_streamed_kept_and_downloaded_through_a_signed_link(billing_docs):
    billing = billing_docs
    _venue, admin, _, won, project_id = await won_with_client(billing)
    created = await upload(billing, admin, opportunityId=won.opportunity_id, projectId=project_id)
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["type"] == "application/pdf" and document["size"] == len(PDF)
    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert document["isSigned"] is False and document["signature"] is None
    assert created.headers["location"] == f"{DOCS}/{document['id']}"

    link = document["url"]
    assert link.startswith(f"{DOCS}/{document['id']}/content?expires=")
    downloaded = await billing.client.get(link)  # no identity at all: the link suffices
    assert downloaded.status_code == 200
    assert downloaded.content == PDF
    assert downloaded.headers["content-type"] == "application/pdf"
    assert "Wedding%20contract.pdf" in downloaded.headers["content-disposition"]

    query = parse_qs(urlsplit(link).query)
    forged = f"{DOCS}/{document['id']}/content?expires={int(query['expires'][0]) + 999}"
    forged += f"&signature={query['signature'][0]}"
    assert (await billing.client.get(forged)).status_code == 403
    secret = billing_settings(billing.runtime.settings).link_secret()
    expired = signed_link(
        secret, document["id"], datetime.now(UTC) - timedelta(hours=2), timedelta(minutes=15)
    )
    assert (await billing.client.get(expired)).status_code == 403
    other = signed_link(secret, "some-other-document", datetime.now(UTC), timedelta(minutes=15))
    assert (
        await billing.client.get(other.replace("some-other-document", document["id"]))
    ).status_code == 403


async def test_bad_uploads_are_refused_and_keep_nothing(billing_docs):
    billing = billing_docs
    venue, admin, _, won, _ = await won_with_client(billing)
    ok = {"opportunityId": won.opportunity_id}
    cases = [
        (dict(content_type="text/plain", **ok), 415),
        (dict(content=PNG, **ok), 415),  # says PDF, is a PNG
        (dict(content=b"", **ok), 422),
        (dict(content=b"%PDF-" + b"x" * (64 * 1024), **ok), 413),
        (dict(opportunityId="no-such-opportunity"), 422),
        ({}, 422),  # linked to nothing
    ]
    for params, expected in cases:
        refused = await upload(billing, admin, **params)
        assert refused.status_code == expected, (params.get("content_type"), refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    listed = (await billing.call("GET", DOCS, admin)).json()["items"]
    assert listed == []
    settings = billing_settings(billing.runtime.settings)
    if settings.blob_store == "local":
        blobs = settings.blob_dir / venue
        assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    staff = billing.member(venue, Role.STAFF)
    assert (await upload(billing, staff, **ok)).status_code == 403
    png = await upload(billing, admin, content=PNG, content_type="image/png", name="plan.png", **ok)
    assert png.status_code == 201


async def test_a_client_signs_the_exact_file_once_and_it_is_final(billing_docs, infra):
    billing = billing_docs
    venue, admin, client, won, project_id = await won_with_client(billing)
    document = (await upload(billing, admin, projectId=project_id)).json()
    assert document["opportunityId"] == won.opportunity_id  # filled in from the project
    assert document["contactId"] == won.contact_id
    tail = TopicTail(infra.kafka_bootstrap, DOCUMENT_TOPIC)
    await tail.start()
    try:
        # before signing, the file may be replaced
        revised = PDF + b"% revised\n"
        replaced = await billing.client.put(
            f"{DOCS}/{document['id']}/content",
            content=revised,
            headers={**billing.headers(admin), "Content-Type": "application/pdf"},
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["sha256"] == hashlib.sha256(revised).hexdigest()

        sign = f"{DOCS}/{document['id']}/sign"
        reviewed = hashlib.sha256(revised).hexdigest()
        no_consent = await billing.call(
            "POST", sign, client, {"signerName": "Ada", "consent": False, "sha256": reviewed}
        )
        assert no_consent.status_code == 422
        ok = {"consent": True, "sha256": reviewed}
        assert (
            await billing.call("POST", sign, admin, {"signerName": "A", **ok})
        ).status_code == 403
        stranger = billing.member(venue, Role.CLIENT)
        assert (
            await billing.call("POST", sign, stranger, {"signerName": "X", **ok})
        ).status_code == 404
        # what the client reviewed must be the current file: unsent, malformed, another one
        for sha256 in (None, "abc", "g" * 64, reviewed + "0"):
            body = {"signerName": "Ada", "consent": True}
            body |= {} if sha256 is None else {"sha256": sha256}
            malformed = await billing.call("POST", sign, client, body)
            assert malformed.status_code == 422, sha256
            assert malformed.headers["content-type"].startswith("application/problem+json")
        before = hashlib.sha256(PDF).hexdigest()  # the file before it was replaced
        stale = await billing.call(
            "POST", sign, client, {"signerName": "Ada", **ok, "sha256": before}
        )
        assert stale.status_code == 409, stale.text
        assert stale.headers["content-type"].startswith("application/problem+json")
        assert stale.json()["currentSha256"] == reviewed
        unsigned = (await billing.call("GET", f"{DOCS}/{document['id']}", client)).json()
        assert unsigned["isSigned"] is False

        signed = await billing.call(
            "POST", sign, client, {"signerName": "Ada  Couple", "consent": True,
                                   "sha256": reviewed.upper()}
        )  # fmt: skip
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert body["isSigned"] is True and body["signedAt"] is not None
        assert body["signature"]["signerName"] == "Ada Couple"
        assert body["signature"]["signerId"] == client.user_id
        assert body["signature"]["sha256"] == hashlib.sha256(revised).hexdigest()
        again = await billing.call("POST", sign, client, {"signerName": "Ada", **ok})
        assert again.status_code == 200 and again.json()["signature"] == body["signature"]
        other = {"signerName": "Ada", **ok, "sha256": before}
        assert (await billing.call("POST", sign, client, other)).status_code == 409
        locked = await billing.client.put(
            f"{DOCS}/{document['id']}/content",
            content=PDF,
            headers={**billing.headers(admin), "Content-Type": "application/pdf"},
        )
        assert locked.status_code == 409
        stored = await billing.runtime.store["documents"].find_one({"_id": document["id"]})
        assert stored["signature"]["address"] and stored["signature"]["consent"]
        types = await tail.distinct_types(document["id"], 2)
        # the upload's own event may reach the topic after the tail began reading it
        late = 1 if types[0] == "gala.document.created.v1" else 0
        types = (await tail.distinct_types(document["id"], 2 + late))[late:]
        assert types == ["gala.document.replaced.v1", "gala.document.signed.v1"]
        with pytest.raises(AssertionError):  # signed once
            await tail.distinct_types(document["id"], 3 + late, timeout=2)
    finally:
        await tail.stop()
    # the client sees their project's documents, and no one else's
    mine = (await billing.call("GET", DOCS, client)).json()["items"]
    assert [d["id"] for d in mine] == [document["id"]]
    assert (await billing.call("GET", DOCS, stranger)).json()["items"] == []
    assert (await billing.call("GET", f"{DOCS}/{document['id']}", stranger)).status_code == 404


async def test_the_s3_store_streams_large_files_in_parts_and_back(s3_server, tmp_path):
    settings = BillingSettings(
        blob_store="s3", s3_bucket="gala-test-documents", s3_endpoint_url=s3_server,
        s3_access_key_id="test", s3_secret_access_key="test", s3_prefix="large/",
    )  # fmt: skip
    store = blob_store(settings)
    data = bytes(range(256)) * (12 * 1024 * 1024 // 256 + 7)  # 12 MiB and a bit: 3 parts

    async def chunks():
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    stored = await store.put("v/d/blob", chunks())
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await sha256_of(store, "v/d/blob") == stored.sha256
    await store.delete("v/d/blob")
    with pytest.raises(ServiceUnavailable):
        await sha256_of(store, "v/d/blob")
