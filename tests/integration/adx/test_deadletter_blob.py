"""The blob dead-letter store against Azurite: one blob per set, idempotent writes, metadata,
replay marks, and a DeadLetterError when storage is down."""

from __future__ import annotations

import pytest

from shared.deadletters.blob import BlobDeadLetterStore
from shared.deadletters.envelope import to_envelope
from shared.errors import DeadLetterError
from shared.pipeline.deadletter import DeadLetter, set_id_for
from shared.pipeline.destination import Destination
from shared.settings import Settings
from tests.fixtures.azurite import Azurite
from tests.support.adx import DATABASE, poison, records
from tests.support.adx_standin import FaultProxy

DEST = Destination(DATABASE, "Events", "json", "EventsMap", "server", dedup=True)


def sink_letters(ids: list[int]) -> list[DeadLetter]:
    return [DeadLetter(record=r, reason=f"{r.where}: terminal sink failure", stage="sink", destination=DEST,
                       batch_id="b" * 64) for r in records("events", ids)]


def test_write_stores_one_blob_per_set_with_metadata(dl_store: BlobDeadLetterStore) -> None:
    letters = sink_letters([1, 2, 3])
    set_id = dl_store.write(letters)
    assert set_id == set_id_for(letters)
    assert list(dl_store.sets()) == [set_id]
    back = dl_store.read(set_id)
    assert [to_envelope(x) for x in back] == [to_envelope(x) for x in letters]  # original bytes kept
    props = dl_store.container.get_blob_client(f"{set_id}.jsonl").get_blob_properties()
    assert props.metadata["count"] == "3"
    assert props.metadata["table"] == "Events" and props.metadata["stage"] == "sink"
    assert props.content_settings.content_type == "application/x-ndjson"


def test_writing_the_same_set_again_overwrites_it(dl_store: BlobDeadLetterStore) -> None:
    first = dl_store.write(sink_letters([1, 2]))
    second = dl_store.write(sink_letters([1, 2]))  # a redelivered trigger batch
    other = dl_store.write([DeadLetter(record=poison("events", 9), reason="not JSON", stage="decode")])
    assert first == second
    assert sorted(dl_store.sets()) == sorted([first, other])  # no duplicate


def test_marks_are_stored_beside_the_sets_and_not_listed_as_sets(dl_store: BlobDeadLetterStore) -> None:
    set_id = dl_store.write(sink_letters([1]))
    assert dl_store.get_mark(set_id) is None
    dl_store.put_mark(set_id, {"fingerprint": "f", "replayed": [0]})
    assert dl_store.get_mark(set_id) == {"fingerprint": "f", "replayed": [0]}
    assert list(dl_store.sets()) == [set_id]


def test_storage_down_raises_dead_letter_error(
    dl_store: BlobDeadLetterStore, blob_proxy: FaultProxy, storage_names: str
) -> None:
    dl_store.write(sink_letters([1]))  # container exists
    blob_proxy.fail(f"{storage_names}-deadletter", 503)
    with pytest.raises(DeadLetterError, match="HTTP 503"):
        dl_store.write(sink_letters([2]))
    with pytest.raises(DeadLetterError):
        list(dl_store.sets())


def test_first_write_creates_a_missing_container(azurite: Azurite, storage_names: str) -> None:
    store = BlobDeadLetterStore.from_url(azurite.account_sas_container_uri(f"{storage_names}-new"), retries=0)
    set_id = store.write(sink_letters([7]))
    assert list(store.sets()) == [set_id]


def test_from_settings_uses_the_sas_of_the_uri_when_auth_is_none(
    azurite: Azurite, storage_names: str
) -> None:
    azurite.create_container(f"{storage_names}-dl2")
    url = azurite.container_sas_uri(f"{storage_names}-dl2")
    settings = Settings.from_env({"DEADLETTER_BLOB_URI": url, "ADX_AUTH": "none"})
    store = BlobDeadLetterStore.from_settings(settings)
    set_id = store.write(sink_letters([5]))
    assert [x.record.offset for x in store.read(set_id)] == [5]
