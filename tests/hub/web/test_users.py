"""Web users: argon2id hashes only, the same refusal for a wrong password and an unknown name,
deactivation instead of deletion, and the `kagiban hub user` command."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from hub.accounts import users
from hub.store.schema import users as users_table
from kagiban.cli import build_parser, main
from tests.support.web_app import PASSWORD, write_config


def stored_hash(engine, username: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(users_table.c.password_hash)
                            .where(users_table.c.username == username)).scalar_one()


def test_password_is_stored_only_as_an_argon2id_hash(engine):
    users.add_user(engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
    digest = stored_hash(engine, "sup-01")
    assert digest.startswith("$argon2id$")
    assert PASSWORD not in digest
    row = users.authenticate(engine, "sup-01", PASSWORD)
    assert row is not None and row["role"] == "supervisor" and row["display_name"] == "Supervisor 01"
    assert "password_hash" not in row


def test_wrong_password_and_unknown_user_are_both_refused(engine):
    users.add_user(engine, "sup-01", PASSWORD, "supervisor")
    assert users.authenticate(engine, "sup-01", PASSWORD + "x") is None
    assert users.authenticate(engine, "nobody", PASSWORD) is None
    assert users.authenticate(engine, "sup-01", "") is None


def test_bad_users_are_refused_with_the_reason(engine):
    users.add_user(engine, "sup-01", PASSWORD, "supervisor")
    with pytest.raises(users.UserError, match="already taken"):
        users.add_user(engine, "sup-01", PASSWORD, "auditor")
    with pytest.raises(users.UserError, match="at least"):
        users.add_user(engine, "aud-01", "short", "auditor")
    with pytest.raises(users.UserError, match="role"):
        users.add_user(engine, "aud-01", PASSWORD, "janitor")
    with pytest.raises(users.UserError, match="username"):
        users.add_user(engine, "has space", PASSWORD, "auditor")


def test_a_deactivated_user_cannot_sign_in_but_stays_listed(engine):
    users.add_user(engine, "aud-01", PASSWORD, "auditor")
    assert users.deactivate(engine, "aud-01")
    assert users.authenticate(engine, "aud-01", PASSWORD) is None
    assert [u["username"] for u in users.list_users(engine)] == []
    assert [u["username"] for u in users.list_users(engine, include_inactive=True)] == ["aud-01"]
    assert not users.deactivate(engine, "aud-01")


def test_replace_sets_a_new_password_and_reactivates(engine):
    first = users.add_user(engine, "adm-01", PASSWORD, "admin")
    users.deactivate(engine, "adm-01")
    again = users.add_user(engine, "adm-01", "another pass 02", "admin", replace=True)
    assert again == first
    assert users.authenticate(engine, "adm-01", PASSWORD) is None
    assert users.authenticate(engine, "adm-01", "another pass 02") is not None


def test_an_old_hash_is_renewed_at_the_next_sign_in(engine):
    users.add_user(engine, "aud-01", PASSWORD, "auditor")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(update(users_table).where(users_table.c.username == "aud-01").values(password_hash=weak))
    assert users.authenticate(engine, "aud-01", PASSWORD) is not None
    renewed = stored_hash(engine, "aud-01")
    assert renewed != weak and not PasswordHasher().check_needs_rehash(renewed)


def test_cli_adds_a_user_with_the_password_from_the_environment(tmp_path, monkeypatch, engine):
    path = write_config(tmp_path / "other")
    monkeypatch.setenv("KAGIBAN_NEW_PASSWORD", "from the env 01")
    assert main(["hub", "user", "add", "--config", str(path), "--username", "sup-02",
                 "--role", "supervisor", "--display-name", "Supervisor 02",
                 "--password-env", "KAGIBAN_NEW_PASSWORD"]) == 0
    from hub import config
    from hub.store import migrate
    from hub.store.db import make_engine

    other = make_engine(config.load(path).db_url())
    try:
        migrate.upgrade(other)
        row = users.authenticate(other, "sup-02", "from the env 01")
        assert row is not None and row["display_name"] == "Supervisor 02"
        assert main(["hub", "user", "deactivate", "--config", str(path), "--username", "sup-02"]) == 0
        assert users.authenticate(other, "sup-02", "from the env 01") is None
    finally:
        other.dispose()


def test_cli_asks_twice_and_refuses_a_mismatch(tmp_path, monkeypatch):
    path = write_config(tmp_path / "other")
    answers = iter(["first password 1", "second password 2"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["hub", "user", "add", "--config", str(path), "--username", "aud-02", "--role", "auditor"]) == 1


def test_the_password_is_never_a_command_line_option():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["hub", "user", "add", "--config", "x.yaml", "--username", "u",
                                   "--role", "auditor", "--password", "secret"])


def test_kagiban_hub_config_still_runs_the_hub():
    args = build_parser().parse_args(["hub", "--config", "hub.yaml"])
    assert args.func.__name__ == "_hub" and args.config == "hub.yaml"


def test_sign_out_a_new_password_a_replacement_and_deactivation_each_end_the_sessions(engine):
    uid = users.add_user(engine, "sup-01", PASSWORD, "supervisor")

    def generation() -> int:
        return users.get_user(engine, uid)["session_gen"]

    seen = [generation()]
    users.end_sessions(engine, uid)
    seen.append(generation())
    assert users.set_password(engine, "sup-01", "another horse 02")
    seen.append(generation())
    users.add_user(engine, "sup-01", PASSWORD, "supervisor", replace=True)
    seen.append(generation())
    assert users.authenticate(engine, "sup-01", PASSWORD)["session_gen"] == seen[-1]
    assert seen == sorted(set(seen)) and len(seen) == 4  # each raised it
    assert users.deactivate(engine, "sup-01")
    with engine.connect() as conn:
        assert conn.execute(select(users_table.c.session_gen).where(users_table.c.id == uid)).scalar_one() > seen[-1]
    # A wrong password changes nothing.
    users.add_user(engine, "aud-01", PASSWORD, "auditor")
    before = users.authenticate(engine, "aud-01", PASSWORD)["session_gen"]
    assert users.authenticate(engine, "aud-01", "wrong") is None
    assert users.authenticate(engine, "aud-01", PASSWORD)["session_gen"] == before
