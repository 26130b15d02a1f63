"""What a newcomer sees from the ``kagiban`` command run as a separate process, as they would run
it: `kagiban hub` without its YAML file says in one line how to give it, with nothing logged
before, and its usage line shows the file as needed."""
from __future__ import annotations

import subprocess
import sys


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
