"""Downloads through ccxt against recorded real Binance responses.

The only fake is the HTTP session: :class:`RecordedBinance` answers ccxt's requests from the payloads in
``payloads/`` the way Binance's REST API does (``startTime``/``endTime``/``fromId``/``limit``), so
ccxt's request building, throttling, response parsing and error mapping all run for real.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pyarrow as pa
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from smart_trader.core.errors import InvalidInputError, NotFoundError, TemporaryError
from smart_trader.data.download import (
    Downloader,
    DownloadRequest,
    DownloadStalledError,
    make_exchange,
)
from smart_trader.data.schema import Kind, bars_schema, trades_schema
from smart_trader.data.timeframes import Timeframe

PAYLOADS = Path(__file__).parent / "payloads"
MS = 1_000_000  # ns per ms


def _load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


EXCHANGE_INFO = _load("binance_spot_exchange_info.json")
KLINES = _load("binance_spot_klines_BTCUSDT_1m.json")
AGG_TRADES = _load("binance_spot_aggtrades_BTCUSDT.json")
ERRORS = _load("binance_errors.json")

FIRST_BAR_MS = KLINES[0][0]  # 2021-10-22T23:03:00Z
FORMING_BAR_MS = KLINES[-1][0]  # 23:12, still forming when recorded (7 trades)
RECORDED_AT_NS = (FORMING_BAR_MS + 30_000) * MS  # a clock inside that bar, as at recording time
LATER_NS = (FORMING_BAR_MS + 3_600_000) * MS  # a clock after every recorded bar closed
FIRST_TRADE_MS = AGG_TRADES[0]["T"]  # 2021-10-22T23:08:16.633Z
HOUR_MS = 3_600_000


def _response(url: str, status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {200: "OK", 400: "Bad Request", 429: "Too Many Requests"}[status]
    response._content = json.dumps(body).encode()
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json;charset=UTF-8"})
    response.url = url
    return response


class RecordedBinance(requests.Session):
    """Binance spot REST answered from the recorded payloads, paging like the real API.

    Args:
        failures: what the next requests meet before the server answers: ``"reset"`` (connection
            reset, a network error) or ``"429"`` (rate limited, the recorded error body).
        ignore_cursor: answer every page from the start, ignoring ``startTime``/``fromId`` (a broken venue).
        delisted: symbols the server rejects with ``-1121 Invalid symbol.`` on data endpoints.
    """

    def __init__(
        self, failures: Iterator[str] | None = None, ignore_cursor: bool = False, delisted: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.failures = failures or iter(())
        self.ignore_cursor = ignore_cursor
        self.delisted = delisted
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.times: list[float] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        assert isinstance(url, str)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.calls.append((parts.path, query))
        self.times.append(time.monotonic())
        failure = next(self.failures, None)
        if failure == "reset":
            raise requests.ConnectionError(
                "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"
            )
        if failure == "429":
            return _response(url, 429, ERRORS["too_many_requests"]["body"])
        if parts.path == "/api/v3/exchangeInfo":
            return _response(url, 200, EXCHANGE_INFO)
        if query.get("symbol") in self.delisted:
            return _response(url, 400, ERRORS["invalid_symbol"]["body"])
        if parts.path == "/api/v3/klines":
            assert query["symbol"] == "BTCUSDT" and query["interval"] == "1m"
            return _response(url, 200, self._klines(query))
        if parts.path == "/api/v3/aggTrades":
            assert query["symbol"] == "BTCUSDT"
            return _response(url, 200, self._agg_trades(query))
        raise AssertionError(f"unexpected request {method!r} {url}")

    def _klines(self, q: dict[str, str]) -> list[Any]:
        start = 0 if self.ignore_cursor else int(q.get("startTime", 0))
        end = int(q.get("endTime", 2**62))
        return [k for k in KLINES if start <= k[0] <= end][: int(q.get("limit", 500))]

    def _agg_trades(self, q: dict[str, str]) -> list[Any]:
        rows: list[Any]
        if self.ignore_cursor:
            rows = AGG_TRADES
        elif "fromId" in q:
            assert "startTime" not in q, "Binance refuses fromId with startTime"
            rows = [t for t in AGG_TRADES if t["a"] >= int(q["fromId"])]
        else:
            start, end = int(q["startTime"]), int(q["endTime"])
            assert end - start <= HOUR_MS, "Binance refuses aggTrades windows over one hour"
            rows = [t for t in AGG_TRADES if start <= t["T"] <= end]
        return rows[: int(q.get("limit", 500))]


def _binance(session: RecordedBinance, rate_limit_ms: int = 1) -> ccxt.binance:
    """A real ccxt binance client (spot markets only) talking to ``session``."""
    return ccxt.binance(
        {
            "enableRateLimit": True,
            "rateLimit": rate_limit_ms,
            "session": session,
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )


def _downloader(session: RecordedBinance, clock_ns: int = LATER_NS, **kwargs: Any) -> Downloader:
    return Downloader(_binance(session), clock=lambda: clock_ns, **kwargs)


def _bars_request(since_ms: int = FIRST_BAR_MS, until_ms: int | None = None, page_limit: int = 4) -> DownloadRequest:
    until_ns = None if until_ms is None else until_ms * MS
    return DownloadRequest("binance", "BTC/USDT", Kind.BARS, Timeframe.parse("1m"), since_ms * MS, until_ns, page_limit)


def _trades_request(
    since_ms: int = FIRST_TRADE_MS, until_ms: int | None = None, page_limit: int = 4
) -> DownloadRequest:
    until_ns = None if until_ms is None else until_ms * MS
    return DownloadRequest("binance", "BTC/USDT", Kind.TRADES, None, since_ms * MS, until_ns, page_limit)


def _requests(session: RecordedBinance, path: str) -> list[dict[str, str]]:
    return [q for p, q in session.calls if p == path]


def _ts_ms(table: pa.Table) -> list[int]:
    return [ns // MS for ns in table.column("ts_event").cast(pa.int64()).to_pylist()]


# -- bars -------------------------------------------------------------------------------------------


def test_bar_pages_concatenate_to_the_recorded_klines_with_exact_decimals() -> None:
    session = RecordedBinance()

    pages = list(_downloader(session).pages(_bars_request(page_limit=4)))

    assert [p.num_rows for p in pages] == [4, 4, 2]
    assert all(p.schema == bars_schema(2, 5) for p in pages)  # tickSize 0.01, stepSize 0.00001
    bars = pa.concat_tables(pages)
    assert _ts_ms(bars) == [k[0] for k in KLINES]
    assert bars.column("ts_event").type == pa.timestamp("ns", tz="UTC")
    for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        assert bars.column(name).to_pylist() == [Decimal(k[i]) for k in KLINES], name
    assert bars.column("open").to_pylist()[0] == Decimal("60685.22")
    assert bars.column("volume").to_pylist()[-1] == Decimal("0.04734")


def test_bars_paginate_from_the_last_open_plus_one_timeframe_until_an_empty_page() -> None:
    session = RecordedBinance()

    list(_downloader(session).pages(_bars_request(page_limit=4)))

    klines = _requests(session, "/api/v3/klines")
    assert [int(q["startTime"]) for q in klines] == [FIRST_BAR_MS + m * 60_000 for m in (0, 4, 8, 10)]
    assert {q["limit"] for q in klines} == {"4"}
    assert len(_requests(session, "/api/v3/exchangeInfo")) == 1


def test_the_bar_still_forming_is_left_out_and_ends_the_download() -> None:
    session = RecordedBinance()

    bars = pa.concat_tables(_downloader(session, clock_ns=RECORDED_AT_NS).pages(_bars_request(page_limit=4)))

    assert _ts_ms(bars) == [k[0] for k in KLINES[:-1]]
    assert len(_requests(session, "/api/v3/klines")) == 3  # no request after the forming bar


def test_bars_stop_before_until() -> None:
    session = RecordedBinance()
    until_ms = FIRST_BAR_MS + 5 * 60_000  # 23:08, exclusive

    bars = pa.concat_tables(_downloader(session).pages(_bars_request(until_ms=until_ms, page_limit=4)))

    assert _ts_ms(bars) == [k[0] for k in KLINES[:5]]
    assert len(_requests(session, "/api/v3/klines")) == 2


def test_resume_continues_after_the_last_stored_bar_without_refetching() -> None:
    session = RecordedBinance()
    last_stored_ms = KLINES[5][0]  # 23:08 already stored

    bars = pa.concat_tables(_downloader(session).pages(_bars_request(page_limit=4), resume_from_ns=last_stored_ms * MS))

    assert _ts_ms(bars) == [k[0] for k in KLINES[6:]]
    assert int(_requests(session, "/api/v3/klines")[0]["startTime"]) == last_stored_ms + 60_000


def test_a_venue_ignoring_the_cursor_ends_the_bar_download_instead_of_looping() -> None:
    # ccxt drops the repeated bars (they open before `since`), so the second page comes back empty
    session = RecordedBinance(ignore_cursor=True)

    pages = list(_downloader(session).pages(_bars_request(page_limit=4)))

    assert [p.num_rows for p in pages] == [4]
    assert len(_requests(session, "/api/v3/klines")) == 2


# -- trades -----------------------------------------------------------------------------------------


def test_trade_pages_concatenate_to_the_recorded_agg_trades_with_exact_decimals() -> None:
    session = RecordedBinance()

    pages = list(_downloader(session).pages(_trades_request(page_limit=4)))

    assert all(p.schema == trades_schema(2, 5) for p in pages)
    trades = pa.concat_tables(pages)
    assert _ts_ms(trades) == [t["T"] for t in AGG_TRADES]
    assert trades.column("price").to_pylist() == [Decimal(t["p"]) for t in AGG_TRADES]
    assert trades.column("size").to_pylist() == [Decimal(t["q"]) for t in AGG_TRADES]
    assert trades.column("trade_id").to_pylist() == [str(t["a"]) for t in AGG_TRADES]
    # "m": buyer was the maker, so the seller took liquidity
    assert trades.column("aggressor_side").to_pylist() == ["sell" if t["m"] else "buy" for t in AGG_TRADES]
    assert trades.column("size").to_pylist()[0] == Decimal("0.00841")


def test_trades_page_by_time_then_by_id_holding_back_the_last_millisecond_of_full_pages() -> None:
    session = RecordedBinance()

    pages = list(_downloader(session).pages(_trades_request(page_limit=4)))

    agg = _requests(session, "/api/v3/aggTrades")
    assert agg[0]["startTime"] == str(FIRST_TRADE_MS)
    assert agg[0]["endTime"] == str(FIRST_TRADE_MS + HOUR_MS)
    assert [q.get("fromId") for q in agg[1:]] == ["966492865", "966492868", "966492871", "966492872"]
    # a full page keeps its last millisecond for the next page, so each page ends on a complete millisecond
    assert [p.num_rows for p in pages] == [3, 3, 3, 1]


def test_resume_continues_one_millisecond_after_the_last_stored_trade() -> None:
    session = RecordedBinance()
    last_stored_ms = AGG_TRADES[4]["T"]

    trades = pa.concat_tables(
        _downloader(session).pages(_trades_request(page_limit=4), resume_from_ns=last_stored_ms * MS)
    )

    assert trades.column("trade_id").to_pylist() == [str(t["a"]) for t in AGG_TRADES[5:]]
    assert _requests(session, "/api/v3/aggTrades")[0]["startTime"] == str(last_stored_ms + 1)


def test_trades_stop_before_until() -> None:
    session = RecordedBinance()
    until_ms = 1634944098000  # 23:08:18.000, exclusive

    trades = pa.concat_tables(_downloader(session).pages(_trades_request(until_ms=until_ms, page_limit=4)))

    assert trades.column("trade_id").to_pylist() == [str(t["a"]) for t in AGG_TRADES if t["T"] < until_ms]


def test_an_hour_without_trades_is_stepped_over_not_taken_for_the_end() -> None:
    session = RecordedBinance()
    since_ms = FIRST_TRADE_MS - 2 * HOUR_MS - 5_000  # two quiet hours before the first recorded trade

    trades = pa.concat_tables(_downloader(session).pages(_trades_request(since_ms=since_ms, page_limit=20)))

    assert trades.num_rows == len(AGG_TRADES)
    starts = [int(q["startTime"]) for q in _requests(session, "/api/v3/aggTrades") if "startTime" in q]
    assert starts == [since_ms, since_ms + HOUR_MS, since_ms + 2 * HOUR_MS]


def test_trades_after_the_last_one_end_when_the_windows_reach_now() -> None:
    session = RecordedBinance()
    since_ms = AGG_TRADES[-1]["T"] + 1
    clock_ns = (since_ms + 2 * HOUR_MS + HOUR_MS // 2) * MS

    pages = list(_downloader(session, clock_ns=clock_ns).pages(_trades_request(since_ms=since_ms)))

    assert pages == []
    assert len(_requests(session, "/api/v3/aggTrades")) == 3


def test_a_venue_repeating_the_same_trades_ends_the_download_with_an_error() -> None:
    session = RecordedBinance(ignore_cursor=True)
    pages = _downloader(session).pages(_trades_request(page_limit=10))

    assert next(pages).num_rows == 9  # full page: the last millisecond is held back
    with pytest.raises(DownloadStalledError):  # the same page again brings nothing it can hand on
        next(pages)
    assert len(_requests(session, "/api/v3/aggTrades")) == 2


# -- errors and rate limit --------------------------------------------------------------------------


def test_network_errors_are_retried_with_backoff_then_the_download_goes_on() -> None:
    # exchangeInfo passes; the first klines request meets a reset connection, the retry a 429
    session = RecordedBinance(failures=iter(["ok", "reset", "429"]))
    sleeps: list[float] = []

    bars = pa.concat_tables(_downloader(session, sleep=sleeps.append).pages(_bars_request(page_limit=4)))

    assert bars.num_rows == len(KLINES)
    assert sleeps == [1.0, 2.0]


def test_persistent_network_errors_become_a_temporary_error_after_bounded_retries() -> None:
    session = RecordedBinance(failures=iter(["reset"] * 10))
    sleeps: list[float] = []
    downloader = _downloader(session, sleep=sleeps.append, max_attempts=4)

    with pytest.raises(TemporaryError, match="failed 4 times"):
        list(downloader.pages(_bars_request()))
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(session.calls) == 4


def test_rate_limited_responses_become_a_temporary_error_when_they_persist() -> None:
    session = RecordedBinance(failures=iter(["ok"] + ["429"] * 10))
    downloader = _downloader(session, sleep=lambda s: None, max_attempts=3)

    with pytest.raises(TemporaryError, match=r"DDoSProtection|RateLimitExceeded"):
        list(downloader.pages(_trades_request()))


def test_a_symbol_the_exchange_does_not_list_is_not_found_with_close_matches() -> None:
    req = DownloadRequest("binance", "BTC/USD", Kind.BARS, Timeframe.parse("1m"), FIRST_BAR_MS * MS)

    with pytest.raises(NotFoundError, match=r"no market 'BTC/USD'.*BTC/USDT"):
        list(_downloader(RecordedBinance()).pages(req))


def test_a_symbol_the_exchange_rejects_as_bad_symbol_is_not_found() -> None:
    session = RecordedBinance(delisted=("ETHUSDT",))
    req = DownloadRequest("binance", "ETH/USDT", Kind.BARS, Timeframe.parse("1m"), FIRST_BAR_MS * MS)

    with pytest.raises(NotFoundError, match="Invalid symbol"):
        list(_downloader(session).pages(req))


def test_ccxt_throttles_requests_by_the_exchange_rate_limit() -> None:
    session = RecordedBinance()
    exchange = _binance(session, rate_limit_ms=50)  # Binance's own setting
    klines_cost = exchange.api["public"]["get"]["klines"]["cost"]  # ccxt's weight of /api/v3/klines

    list(Downloader(exchange, clock=lambda: LATER_NS).pages(_bars_request(page_limit=3)))

    gaps_ms = [(b - a) * 1000 for a, b in zip(session.times, session.times[1:], strict=False)]
    assert len(gaps_ms) == 5  # exchangeInfo, then 5 klines pages
    assert min(gaps_ms) >= 50 * klines_cost - 2  # each request waits rateLimit × cost after the previous one


def test_the_rate_limit_is_on_and_logged() -> None:
    assert make_exchange("binance").enableRateLimit is True
    exchange = _binance(RecordedBinance())
    exchange.enableRateLimit = False

    Downloader(exchange)

    assert exchange.enableRateLimit is True


def test_the_start_of_a_download_logs_the_exchange_rate_limit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="smart_trader.data.download")

    list(_downloader(RecordedBinance()).pages(_bars_request()))

    assert "rateLimit 1 ms" in caplog.text


# -- requests and the exchange factory --------------------------------------------------------------


def test_make_exchange_builds_a_rate_limited_ccxt_client() -> None:
    exchange = make_exchange(" Binance ")

    assert isinstance(exchange, ccxt.binance)
    assert exchange.enableRateLimit is True
    assert exchange.rateLimit == 50


def test_make_exchange_refuses_an_unknown_id_and_lists_close_matches() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown exchange 'binanse'.*binance"):
        make_exchange("binanse")


@pytest.mark.parametrize(
    ("kind", "timeframe", "since", "until", "limit"),
    [
        (Kind.BARS, None, 0, None, 10),
        (Kind.TRADES, Timeframe.parse("1m"), 0, None, 10),
        (Kind.QUOTES, None, 0, None, 10),
        (Kind.BARS, Timeframe.parse("1m"), 10, 10, 10),
        (Kind.BARS, Timeframe.parse("1m"), 0, None, 0),
    ],
)
def test_contradictory_requests_are_refused(
    kind: Kind, timeframe: Timeframe | None, since: int, until: int | None, limit: int
) -> None:
    with pytest.raises(InvalidInputError):
        DownloadRequest("binance", "BTC/USDT", kind, timeframe, since, until, limit)


def test_a_timeframe_the_exchange_does_not_offer_is_refused_before_any_request() -> None:
    session = RecordedBinance()
    req = DownloadRequest("binance", "BTC/USDT", Kind.BARS, Timeframe.parse("7m"), FIRST_BAR_MS * MS)

    with pytest.raises(InvalidInputError, match="no 7m bars"):
        list(_downloader(session).pages(req))
    assert session.calls == []


def test_a_request_for_another_exchange_is_refused() -> None:
    req = DownloadRequest("kraken", "BTC/USDT", Kind.TRADES, None, 0)

    with pytest.raises(InvalidInputError, match="kraken"):
        list(_downloader(RecordedBinance()).pages(req))
