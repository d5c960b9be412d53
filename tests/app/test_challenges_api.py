"""The challenges API on the running platform (SQLite and PostgreSQL): programs, taking a challenge (its paper account
opens with it), the trader's list, one challenge's floors, its events; bad input is a 422 naming what is wrong, someone
else's challenge a 404 as for none."""

from __future__ import annotations

import uuid
from decimal import Decimal

from smart_trader.challenges.program import programs
from tests.app.conftest import Harness, assert_problem

D = Decimal
V1 = "/api/v1"


def test_programs_lists_every_preset_with_its_sources(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    r = platform.client.get(f"{V1}/challenges/programs", headers=alice)
    assert r.status_code == 200, r.text
    listed = {p["id"]: p for p in r.json()}
    assert set(listed) == set(programs())
    ftmo = listed["ftmo-2step"]
    assert ftmo["tz"] == "Europe/Prague" and ftmo["reset_time"] == "00:00"
    assert [p["name"] for p in ftmo["phases"]] == [p.name for p in programs()["ftmo-2step"].phases]
    assert all(p["sources"] and p["sources"][0]["url"].startswith("https://") for p in listed.values())


def test_taking_a_challenge_opens_its_account_with_the_size_and_the_floors_of_the_program(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    body = {"program": "ftmo-2step", "account_size": "100000", "currency": "USDT"}
    r = platform.client.post(f"{V1}/challenges", headers=alice, json=body)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "active" and c["phase_index"] == 0 and c["phase"] == "FTMO Challenge"
    # FTMO 2-Step [S1][S4]: daily floor = day-start balance − 5 % of B0; maximum loss floor = B0 − 10 %
    assert D(c["daily_floor"]) == D("95000") and D(c["max_loss_floor"]) == D("90000")
    assert D(c["todays_permitted_loss"]) == D("5000") and D(c["max_permitted_loss"]) == D("10000")
    assert D(c["target"]) == D("10000") and D(c["profit"]) == 0 and c["breach"] is None
    assert c["min_trading_days"] == 4 and c["trading_days"] == 0
    account = platform.client.get(f"{V1}/accounts/{c['account_id']}", headers=alice).json()
    assert D(account["cash"]) == D("100000") and account["currency"] == "USDT" and account["account_type"] == "margin"
    mine = platform.client.get(f"{V1}/challenges", headers=alice).json()
    assert [x["id"] for x in mine] == [c["id"]]
    one = platform.client.get(f"{V1}/challenges/{c['id']}", headers=alice)
    assert one.status_code == 200 and one.json()["account_id"] == c["account_id"]
    events = platform.client.get(f"{V1}/challenges/{c['id']}/events", headers=alice)
    assert events.status_code == 200 and isinstance(events.json(), list)


def test_bad_input_is_a_422_that_names_the_problem(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    r = platform.client.post(f"{V1}/challenges", headers=alice, json={"program": "nope", "account_size": "100000"})
    problem = assert_problem(r, 422)
    assert "nope" in problem["detail"] and "ftmo-2step" in problem["detail"]
    r = platform.client.post(f"{V1}/challenges", headers=alice, json={"program": "ftmo-2step", "account_size": "12345"})
    problem = assert_problem(r, 422)
    assert "12345" in problem["detail"] and "100000" in problem["detail"]
    r = platform.client.post(f"{V1}/challenges", headers=alice, json={"program": "ftmo-2step", "account_size": "-1"})
    assert_problem(r, 422)
    assert platform.client.get(f"{V1}/challenges", headers=alice).json() == []  # nothing was opened


def test_someone_elses_challenge_is_404_as_if_it_did_not_exist(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    mallory = platform.user("mallory@example.com")
    body = {"program": "ftmo-2step", "account_size": "10000", "currency": "USDT"}
    theirs = platform.client.post(f"{V1}/challenges", headers=alice, json=body).json()["id"]
    nowhere = str(uuid.uuid4())
    for path in ("", "/events"):
        a = assert_problem(platform.client.get(f"{V1}/challenges/{theirs}{path}", headers=mallory), 404)
        b = assert_problem(platform.client.get(f"{V1}/challenges/{nowhere}{path}", headers=mallory), 404)
        assert a["detail"].replace(theirs, "X") == b["detail"].replace(nowhere, "X")
    assert platform.client.get(f"{V1}/challenges", headers=mallory).json() == []


def test_a_risk_manager_defines_a_custom_program_that_traders_then_take(platform: Harness) -> None:
    from smart_trader.gateway.access import Role
    from tests.app.security_support import bearer, login, make_user
    from tests.app.test_access_rules import custom_program

    alice = platform.user("alice@example.com")
    make_user(platform, "rita@example.com", Role.RISK_MANAGER)
    rita = bearer(login(platform, "rita@example.com")["access_token"])
    program = custom_program("firm-x-1step")
    program["phases"][0]["daily_loss"] = {"amount": {"pct": 3}, "reference": "max"}
    r = platform.client.post(f"{V1}/challenges/programs", headers=rita, json=program)
    assert r.status_code == 201, r.text
    listed = platform.client.get(f"{V1}/challenges/programs", headers=alice).json()
    assert "firm-x-1step" in [p["id"] for p in listed]
    # a trader takes it: the floors are the custom rules' (3 % of the day's max(balance, equity) reference)
    r = platform.client.post(
        f"{V1}/challenges", headers=alice, json={"program": "firm-x-1step", "account_size": "10000"}
    )
    assert r.status_code == 201, r.text
    assert D(r.json()["daily_floor"]) == D("9700") and r.json()["max_loss_floor"] is None
    # traders cannot define programs; a field breaking a rule is named; ids are never redefined
    assert platform.client.post(f"{V1}/challenges/programs", headers=alice, json=program).status_code == 403
    bad = custom_program("firm-x-bad")
    bad["phases"][0]["daily_loss"] = {"amount": {"pct": 3}, "reference": "banana"}
    problem = assert_problem(platform.client.post(f"{V1}/challenges/programs", headers=rita, json=bad), 422)
    assert "phases[0].daily_loss.reference" in problem["detail"]
    for taken in ("firm-x-1step", "ftmo-2step"):
        again = custom_program(taken)
        problem = assert_problem(platform.client.post(f"{V1}/challenges/programs", headers=rita, json=again), 409)
        assert taken in problem["detail"]
