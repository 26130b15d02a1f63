"""What a newcomer sees from the ``kagiban`` command run as a separate process, as they would run
it: `kagiban hub` without its YAML file says in one line how to give it, with nothing logged
before, and its usage line shows the file as needed. An admin command (``kagiban hub user``)
on a failover pair's store never migrates it (its active may run the older code), and no
command works on a store a newer kagiban migrated: each says so naming both revisions."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hub.config import load
from hub.store import migrate
from kagiban.cli import main
from tests.support import revisions
from tests.support.web_app import write_config


def kagiban(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kagiban.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_hub_without_config_says_in_one_line_how_to_run_it():
    done = kagiban("hub")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "kagiban hub: give the hub's YAML file: kagiban hub --config /etc/kagiban/hub.yaml "
        "(example: config/hub.example.yaml)"]


def test_hub_subcommands_without_config_say_it_in_one_line_too():
    for args in (["hub", "policy-key"], ["hub", "user", "list"]):
        done = kagiban(*args)
        assert done.returncode == 2
        [line] = done.stderr.splitlines()
        assert line.startswith(f"kagiban {' '.join(args)}: give the hub's YAML file: kagiban {' '.join(args)} --config ")


def test_the_hub_usage_line_shows_the_config_file_as_needed():
    usage = kagiban("hub", "--help").stdout.split("\n\n")[0]
    assert usage.splitlines()[0] == "usage: kagiban hub --config FILE"
    assert "[--config" not in usage


def test_the_hub_logs_no_import_noise_before_its_own_words(tmp_path):
    # A file that is not a hub config: the hub's modules (alembic among them) are loaded, and
    # what is wrong with the file is the first thing printed.
    bad = tmp_path / "hub.yaml"
    bad.write_text("nonsense: [\n")
    done = kagiban("hub", "--config", str(bad))
    assert done.returncode == 2
    assert done.stderr.startswith(f"kagiban: configuration error: {bad}: not valid YAML"), done.stderr
    assert "alembic" not in done.stderr


def test_a_user_command_on_a_pairs_older_store_does_not_migrate_it(store, tmp_path, capsys):
    if not store.is_postgres:
        pytest.skip("a failover pair shares a PostgreSQL store")
    path = write_config(tmp_path / "hub-b", failover={"enabled": True, "hub_name": "hub-b"})
    url = load(path).db_url()
    # Stamped one revision back: the store as the not yet upgraded active left it.
    previous = revisions.previous_revision()
    revisions.stamp(url, previous)
    assert main(["hub", "user", "list", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert (f"kagiban hub user list: the failover pair's store is at revision {previous}, older than this "
            f"kagiban's {migrate.head_revision()}; only the hub taking the lease migrates it") in err
    assert revisions.revision(url) == previous


def test_a_user_command_on_a_store_a_newer_kagiban_migrated_says_so(store, tmp_path, capsys):
    path = write_config(tmp_path / "hub")
    assert main(["hub", "user", "list", "--config", str(path)]) == 0  # the store made and migrated
    url = load(path).db_url()
    revisions.stamp(url, revisions.FUTURE)
    assert main(["hub", "user", "list", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert ("kagiban hub user list: the store is at revision 0099_from_a_newer_kagiban, which this kagiban "
            f"does not know (its newest is {migrate.head_revision()})") in err
    assert revisions.revision(url) == revisions.FUTURE


def test_a_user_command_on_a_single_hubs_older_store_migrates_it_as_a_start_would(store, tmp_path, capsys):
    path = write_config(tmp_path / "hub")
    assert main(["hub", "user", "list", "--config", str(path)]) == 0
    url = load(path).db_url()
    # The store as the previous kagiban left it: a single hub has no active to wait for.
    revisions.downgrade(url, revisions.previous_revision())
    assert main(["hub", "user", "list", "--config", str(path)]) == 0
    assert "revision" not in capsys.readouterr().err
    assert revisions.revision(url) == migrate.head_revision()
