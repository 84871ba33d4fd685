"""The file store: bytes in the files folder, records in the database, bounds before the work."""

from __future__ import annotations

import io

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from pipeline.jobs.batches import BatchStore
from pipeline.jobs.database import MIGRATIONS, open_database, sqlite_url
from pipeline.jobs.files import FileStore
from pipeline.jobs.errors import InvalidInputError, NotFoundError, StoreFullError, TooLargeError


def test_a_file_is_stored_read_listed_and_deleted(store: BatchStore, clock):
    files = store.files
    record = files.create(io.BytesIO(b"hello"), "a.txt", "user_data")
    assert files.path(record.id).read_bytes() == b"hello" and record.bytes == 5
    clock.now += 1
    second = files.create(io.BytesIO(b"x"), "b.txt", "batch")
    assert [f.id for f in files.list()] == [second.id, record.id]
    assert [f.id for f in files.list(order="asc")] == [record.id, second.id]
    assert [f.id for f in files.list(purpose="batch")] == [second.id]
    files.delete(record.id)
    assert not (files.directory / record.id).exists()
    with pytest.raises(NotFoundError):
        files.get(record.id)


def test_an_upload_past_the_size_bound_leaves_nothing_behind(store: BatchStore):
    with pytest.raises(TooLargeError):
        store.files.create(io.BytesIO(b"x" * ((1 << 20) + 1)), "big", "batch")
    assert list(store.files.directory.iterdir()) == [] and store.files.count() == 0


def test_the_store_refuses_a_purpose_clients_may_not_use_and_files_past_its_count(store: BatchStore):
    with pytest.raises(InvalidInputError) as refused:
        store.files.create(io.BytesIO(b"x"), "a", "batch_output")
    assert refused.value.input == "purpose"
    for _ in range(store.files.limits.max_files):
        store.files.create(io.BytesIO(b"x"), "a", "batch")
    with pytest.raises(StoreFullError):
        store.files.create(io.BytesIO(b"x"), "a", "batch")


def test_files_list_pages_with_a_cursor_in_either_order(store: BatchStore, clock):
    made = []
    for n in range(5):
        clock.now += 1
        made.append(store.files.create(io.BytesIO(b"x"), f"{n}", "batch").id)
    newest_first = [f.id for f in store.files.list(limit=3)]
    assert newest_first == made[::-1][:3]
    assert [f.id for f in store.files.list(after=newest_first[-1])] == made[::-1][3:]
    oldest_first = [f.id for f in store.files.list(order="asc", limit=2)]
    assert oldest_first == made[:2]
    assert [f.id for f in store.files.list(order="asc", after=oldest_first[-1])] == made[2:]


def test_a_database_made_by_the_first_migration_is_brought_up_to_date(tmp_path):
    url = sqlite_url(tmp_path)
    engine = create_engine(url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001_jobs")
        connection.execute(text("INSERT INTO files VALUES ('file-old', 'batch', 'a', 1, 0, 'file-old')"))
    assert "owner" not in {c["name"] for c in inspect(engine).get_columns("files")}
    sessions = open_database(url)
    store = FileStore(sessions, tmp_path / "files")
    assert store.get("file-old").owner is None
    assert {c["name"] for c in inspect(engine).get_columns("batches")} >= {"owner", "metadata"}
