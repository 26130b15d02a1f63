"""The hub's YAML file: good files load with paths taken from the file's folder; a wrong
one stops the hub with an error naming the file, the key and the reason."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import load
from hub.registry.policy import compile_policies, load_staff
from kagiban.configfile import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "config"


def _write(tmp_path, text):
    path = tmp_path / "hub.yaml"
    path.write_text(text)
    return path


def test_relative_paths_are_taken_from_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    path = _write(tmp_path, "data_dir: data\nstaff_file: people/staff.yaml\n")
    cfg = load(path)
    assert cfg.data_path() == tmp_path / "data"
    assert cfg.db_url() == f"sqlite:///{tmp_path / 'data' / 'kagiban.db'}"
    assert cfg.staff_path() == tmp_path / "people" / "staff.yaml"
    assert cfg.known_stations() is None  # no list: every station is accepted


def test_defaults(tmp_path):
    cfg = load(_write(tmp_path, "{}\n"))
    assert (cfg.ingest.batch_max, cfg.ingest.batch_wait_ms, cfg.ingest.client_id) == (500, 10, "kagiban-hub")
    assert cfg.time_zone == "Asia/Tokyo"
    assert cfg.broker.prefix == "kagiban"
    assert cfg.staff_path() is None


def test_relative_sqlite_url_is_taken_from_the_config_folder(tmp_path):
    cfg = load(_write(tmp_path, "database:\n  url: sqlite:///store/audit.db\n"))
    assert cfg.db_url() == f"sqlite:///{tmp_path / 'store' / 'audit.db'}"


def test_listed_stations_map_to_their_sites(tmp_path):
    cfg = load(_write(tmp_path, "stations:\n  - {id: cabinet-1, site: ward-a, kind: cabinet}\n"
                                "  - {id: shredder-1, site: ward-b, kind: shredder}\n"))
    assert cfg.known_stations() == {"cabinet-1": "ward-a", "shredder-1": "ward-b"}


BAD = [
    ("unknown key", "ingest:\n  batchmax: 5\n", "ingest.batchmax: unknown key"),
    ("wrong type", "ingest:\n  batch_max: lots\n", "ingest.batch_max: Input should be a valid integer"),
    ("missing value", "stations:\n  - {id: cabinet-1, kind: cabinet}\n", "stations.0.site: missing value"),
    ("out of range", "ingest:\n  batch_max: 0\n",
     "ingest.batch_max: Input should be greater than or equal to 1"),
    ("bad station kind", "stations:\n  - {id: c1, site: a, kind: safe}\n", "stations.0.kind"),
    ("station twice", "stations:\n  - {id: c1, site: a, kind: cabinet}\n  - {id: c1, site: b, kind: door}\n",
     "stations: Value error, station id 'c1' is listed twice"),
    ("unknown time zone", "time_zone: Mars/Olympus\n", "time_zone: Value error, unknown time zone"),
    ("password in URL", "database:\n  url: postgresql://hub:secret@db/kagiban\n",
     "database.url: Value error, put no password in the URL"),
    ("unknown broker key", "broker:\n  hostname: x\n", "broker.hostname: unknown key"),
    ("broker port out of range", "broker:\n  port: 70000\n", "broker.port: should be less than or equal to 65535"),
    ("broker certificate without its key", "broker:\n  tls: {ca_file: ca.pem, cert_file: hub.pem}\n",
     "broker.tls: cert_file and key_file go together"),
    ("unknown holiday calendar", "sites:\n  ward-a:\n    holiday_calendar: XX\n",
     "sites.ward-a.holiday_calendar: Value error, unknown holiday calendar 'XX'"),
    ("unknown subdivision", "sites:\n  ward-a:\n    holiday_calendar: US-ZZ\n",
     "sites.ward-a.holiday_calendar: Value error, the holiday calendar US has no subdivision 'ZZ'"),
    ("closed day not a date", "sites:\n  ward-a:\n    holidays: [soon]\n",
     "sites.ward-a.holidays.0.date: Value error, give a date (2027-06-15, that year only) or a month and day"),
    ("closed day not in the year", "sites:\n  ward-a:\n    holidays: [{date: '04-31'}]\n",
     "sites.ward-a.holidays.0.date: Value error, 04-31 is not a day of the year"),
    ("closed range without its end", "sites:\n  ward-a:\n    holidays: [{from: '12-29', label: x}]\n",
     "sites.ward-a.holidays.0: Value error, give date for one day, or both from and to for a range"),
    ("closed range backwards", "sites:\n  ward-a:\n    holidays:\n      - {from: 2027-08-14, to: 2027-08-12}\n",
     "sites.ward-a.holidays.0: Value error, to (2027-08-12) is before from (2027-08-14)"),
    ("closed range of mixed kinds", "sites:\n  ward-a:\n    holidays: [{from: '12-29', to: 2027-01-03}]\n",
     "sites.ward-a.holidays.0: Value error, from and to must both be dates"),
    ("closed day misspelt key", "sites:\n  ward-a:\n    holidays: [{from: '12-29', until: '01-03'}]\n",
     "sites.ward-a.holidays.0.until: unknown key"),
    ("work listed twice", "sites:\n  ward-a:\n    key_work: [{code: register, ja: 出納}, {code: register, ja: 点検}]\n",
     "sites.ward-a.key_work: Value error, work code 'register' is listed twice"),
    ("work without wording", "sites:\n  ward-a:\n    key_work: [{code: register}]\n",
     "sites.ward-a.key_work.0.ja: missing"),
    ("work code not an id", "sites:\n  ward-a:\n    key_work: [{code: 'a b', ja: 出納}]\n",
     "sites.ward-a.key_work.0.code"),
]


@pytest.mark.parametrize("text, says", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_file_names_file_key_and_reason(tmp_path, text, says):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(str(path))
    assert says in str(err.value)


def test_a_site_takes_japans_calendar_unless_it_names_another_or_none(tmp_path):
    cfg = load(_write(tmp_path, "sites:\n  ward-a: {}\n  branch-us: {holiday_calendar: us-ca}\n"
                                "  annex: {holiday_calendar: none}\n"))
    assert cfg.site("ward-a").holiday_calendar == "JP"
    assert cfg.site("unlisted").holiday_calendar == "JP"
    assert cfg.site("branch-us").holiday_calendar == "US-CA"
    assert cfg.site("annex").holiday_calendar is None


def test_closed_days_are_dates_month_days_and_ranges_with_labels(tmp_path):
    cfg = load(_write(tmp_path, "sites:\n  ward-a:\n    holidays:\n"
                                "      - 2027-06-15\n"
                                "      - {from: '12-29', to: '01-03', label: 年末年始}\n"
                                "      - {date: '05-01', label: 開庁記念日}\n"))
    plain, new_year, founding = cfg.site("ward-a").holidays
    assert (str(plain.on), plain.label) == ("2027-06-15", "")
    assert (new_year.first, new_year.last, new_year.label) == ("12-29", "01-03", "年末年始")
    assert (founding.on, founding.label) == ("05-01", "開庁記念日")


def test_example_files_load_and_give_every_cabinet_a_policy():
    cfg = load(EXAMPLES / "hub.example.yaml")
    assert cfg.known_stations() == {"cabinet-1": "ward-a", "cabinet-2": "ward-a", "cabinet-3": "ward-a"}
    assert cfg.staff_file == Path("staff.yaml")

    people = load_staff(EXAMPLES / "staff.example.yaml")
    compiled = compile_policies(people, cfg.known_stations())
    assert set(compiled) == {"cabinet-1", "cabinet-2", "cabinet-3"}
    for _site, badges in compiled.values():
        assert badges, "every cabinet has someone allowed"
        assert all(len(badge) == 16 for badge in badges)  # FeliCa IDm


def test_a_station_id_that_is_also_a_site_id_is_refused_naming_it(tmp_path):
    # An office's bridge certificate is named after its site (docs/offices.md).
    path = tmp_path / "hub.yaml"
    path.write_text("stations:\n  - {id: site-a, site: site-b, kind: cabinet}\n"
                    "  - {id: cab-b1, site: site-a, kind: cabinet}\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert "'site-a' is also a site id" in str(err.value) and str(path) in str(err.value)


def test_the_broker_section_is_the_stations_one_and_reads_the_same_on_both_sides(tmp_path):
    from device import unit_file
    from kagiban.broker import BrokerConfig

    section = ("broker:\n  host: 127.0.0.1\n  port: 8883\n  prefix: kagiban/ward-a\n  username: hub\n"
               "  password_file: ${CREDENTIALS_DIRECTORY}/mqtt\n"
               "  tls: {ca_file: ca.pem, cert_file: me.pem, key_file: me.key}\n")
    hub = load(_write(tmp_path, section)).broker
    unit = tmp_path / "unit.yaml"
    unit.write_text("site: s\nstation: {id: c1, kind: printer}\npolicy: {public_key: "
                    "'VXGbZ1gWydvXB5k2i7wTpHIpEDR0Le9x4emQ+q0VYXw='}\n" + section)
    station = unit_file.load(unit).broker
    assert type(hub) is type(station) is BrokerConfig
    assert hub == station and hub.tls is not None and hub.tls.key_file == Path("me.key")
    # A hub file without the section gets the defaults, its own copy each time.
    first, second = load(_write(tmp_path, "{}\n")).broker, load(_write(tmp_path, "{}\n")).broker
    assert first == BrokerConfig() and first is not second


_BROKER_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 70000), st.floats(allow_nan=False, width=32),
                           st.sampled_from(["127.0.0.1", "", "kagiban", "kagiban/ward-a", "a//b", "x y", "8883"]),
                           st.fixed_dictionaries({"ca_file": st.sampled_from(["ca.pem", 5])},
                                                 optional={"cert_file": st.just("me.pem"), "key_file": st.just("k")}))
_BROKER_KEYS = st.sampled_from(["host", "port", "prefix", "keepalive_s", "username", "password_env", "password_file",
                                "tls", "hostname"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_BROKER_KEYS, _BROKER_VALUES, max_size=4))
def test_a_broker_section_means_the_same_to_the_hub_and_to_a_station(section):
    from pydantic import ValidationError

    from device.config import DeviceConfig
    from hub.config import HubConfig
    from kagiban.configfile import ConfigProblems, convert, pydantic_problems

    unit = {"site": "s", "station": {"id": "c1", "kind": "cabinet"}, "broker": section,
            "policy": {"public_key": "VXGbZ1gWydvXB5k2i7wTpHIpEDR0Le9x4emQ+q0VYXw="}}
    try:
        station, station_problems = convert(unit, DeviceConfig).broker, []
    except ConfigProblems as exc:
        station, station_problems = None, list(exc.problems)
    try:
        hub, hub_problems = HubConfig.model_validate({"broker": section}).broker, []
    except ValidationError as exc:
        hub, hub_problems = None, pydantic_problems(exc.errors())
    assert hub == station and hub_problems == station_problems
