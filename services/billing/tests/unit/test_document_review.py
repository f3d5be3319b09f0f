"""A client signs only the file they reviewed, without infrastructure."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from billing.documents.domain import Document, DocumentNotAsReviewed, Links, Stored
from billing.documents.links import LinkRefused, check_link, signed_link

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SHA = "ab" * 32


def test_only_the_current_file_can_be_signed():
    document = Document.upload(
        venue_id="v", name="contract.pdf", content_type="application/pdf",
        links=Links(project_id="p"), file=Stored("k", 10, SHA), uploaded_by="u", now=NOW,
    )  # fmt: skip
    document.check_reviewed(SHA)
    document.check_reviewed(SHA.upper())
    with pytest.raises(DocumentNotAsReviewed) as refused:
        document.check_reviewed("cd" * 32)
    assert refused.value.status == 409
    assert refused.value.extensions["currentSha256"] == SHA


def test_a_clients_link_names_them_and_cannot_be_moved_to_anyone():
    link = signed_link(b"secret", "d1", NOW, timedelta(minutes=15), "user 1")
    query = parse_qs(urlsplit(link).query)
    expires, signature = int(query["expires"][0]), query["signature"][0]
    assert query["client"] == ["user 1"]
    check_link(b"secret", "d1", expires, signature, NOW, "user 1")
    for client in (None, "user 2"):
        with pytest.raises(LinkRefused):
            check_link(b"secret", "d1", expires, signature, NOW, client)


@pytest.mark.parametrize("signature", ["a" * 63 + "é", "\udcff" * 64, "", "Z" * 64])
def test_a_forged_signature_of_any_characters_is_refused_not_a_crash(signature):
    expires = int((NOW + timedelta(minutes=5)).timestamp())
    with pytest.raises(LinkRefused):
        check_link(b"secret", "d1", expires, signature, NOW)
