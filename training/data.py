"""Load and validate daily sales in the Kaggle "Store Item Demand Forecasting" format.

Every problem is reported with the file, the CSV line or the series, and what is wrong,
because a retailer's export is the usual source of bad data and they need to find it.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("date", "store", "item", "sales")
DATE_FORMAT = "%Y-%m-%d"


class SalesDataError(ValueError):
    """The sales file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Series:
    """One store-item daily sales series, gap-free and in date order."""

    store: int
    item: int
    start: pd.Timestamp
    sales: np.ndarray  # float32, one value per day

    @property
    def key(self) -> str:
        return f"store {self.store} item {self.item}"


MAX_VALUE = 1_000_000_000  # ids and daily sales above this are data errors, and would overflow int64 casts


def _line(label: int) -> int:
    """CSV line number of a data row: the frame keeps pandas' row labels, which count blank lines."""
    return int(label) + 2


def _first_bad(mask: pd.Series) -> int | None:
    """Row label of the first True in mask, or None."""
    bad = mask[mask.to_numpy(dtype=bool)]
    return None if bad.empty else int(bad.index[0])


def _parse_integers(frame: pd.DataFrame, column: str, path: Path, minimum: int) -> pd.Series:
    raw = frame[column].str.strip()
    numbers = pd.to_numeric(raw, errors="coerce")
    not_integer = numbers.isna() | ~np.isfinite(numbers) | (numbers != np.floor(numbers))
    row = _first_bad(not_integer)
    if row is not None:
        raise SalesDataError(
            f"{path}: line {_line(row)}: column '{column}' must be an integer, got {frame[column].loc[row]!r}"
        )
    for bad, rule in ((numbers < minimum, f">= {minimum}"), (numbers > MAX_VALUE, f"<= {MAX_VALUE}")):
        row = _first_bad(bad)
        if row is not None:
            raise SalesDataError(
                f"{path}: line {_line(row)}: column '{column}' must be {rule}, got {frame[column].loc[row]!r}"
            )
    return numbers.astype(np.int64)


def _read_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as stream:
        header = next(csv.reader(stream), [])
    return [c.strip() for c in header]


def load_sales(path: str | Path) -> pd.DataFrame:
    """Read and validate a sales CSV; returns typed columns date, store, item, sales."""
    path = Path(path)
    if path.is_dir():
        raise SalesDataError(f"{path}: is a directory, not a CSV file")
    if not path.is_file():
        raise SalesDataError(f"{path}: file not found")
    header = _read_header(path)
    if not header:
        raise SalesDataError(f"{path}: file is empty (expected a header: {','.join(REQUIRED_COLUMNS)})")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise SalesDataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED_COLUMNS)}, "
            f"found {','.join(header)}"
        )
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        raise SalesDataError(f"{path}: line 1: column(s) {', '.join(repeated)} appear more than once")
    try:
        with warnings.catch_warnings():  # trailing commas: pandas warns, and index_col=False already handles them
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        problem = " ".join(str(exc).split())
        raise SalesDataError(f"{path}: not a readable CSV file: {problem}") from None
    frame.columns = [c.strip() for c in frame.columns]
    frame = frame[list(REQUIRED_COLUMNS)]
    frame = frame[(frame != "").any(axis=1)]  # blank lines; labels keep counting them for line numbers
    if frame.empty:
        raise SalesDataError(f"{path}: no data rows")

    dates = pd.to_datetime(frame["date"].str.strip(), format=DATE_FORMAT, errors="coerce")
    row = _first_bad(dates.isna())
    if row is not None:
        raise SalesDataError(
            f"{path}: line {_line(row)}: column 'date' must be a date YYYY-MM-DD, got {frame['date'].loc[row]!r}"
        )
    typed = pd.DataFrame(
        {
            "date": dates,
            "store": _parse_integers(frame, "store", path, minimum=0),
            "item": _parse_integers(frame, "item", path, minimum=0),
            "sales": _parse_integers(frame, "sales", path, minimum=0),
        }
    )
    duplicated = typed.duplicated(subset=["store", "item", "date"])
    row = _first_bad(duplicated)
    if row is not None:
        r = typed.loc[row]
        raise SalesDataError(
            f"{path}: line {_line(row)}: duplicate day {r['date']:%Y-%m-%d} for store {r['store']} item {r['item']}"
        )
    return typed


def select_series(
    sales: pd.DataFrame,
    stores: Iterable[int],
    items: Iterable[int],
    source: str | Path = "sales data",
) -> list[Series]:
    """Pick the requested store-item series and check each one is complete day by day."""
    stores, items = sorted(set(stores)), sorted(set(items))
    chosen = sales[sales["store"].isin(stores) & sales["item"].isin(items)]
    if chosen.empty:
        raise SalesDataError(f"{source}: no rows for stores {stores} and items {items}")
    result: list[Series] = []
    for (store, item), group in chosen.sort_values("date").groupby(["store", "item"], sort=True):
        days = group["date"].to_numpy()
        expected = pd.date_range(days[0], days[-1], freq="D")
        if len(expected) != len(days):
            present = pd.DatetimeIndex(days)
            gap = expected.difference(present)[0]
            raise SalesDataError(
                f"{source}: store {store} item {item}: missing day {gap:%Y-%m-%d} "
                f"({len(expected) - len(days)} day(s) missing between "
                f"{expected[0]:%Y-%m-%d} and {expected[-1]:%Y-%m-%d})"
            )
        result.append(
            Series(
                store=int(store),
                item=int(item),
                start=pd.Timestamp(days[0]),
                sales=group["sales"].to_numpy(dtype=np.float32),
            )
        )
    found = {(s.store, s.item) for s in result}
    absent = [(s, i) for s in stores for i in items if (s, i) not in found]
    if absent:
        listed = ", ".join(f"store {s} item {i}" for s, i in absent[:5])
        more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        raise SalesDataError(f"{source}: no rows for {listed}{more}")
    return result


def parse_id_range(text: str) -> list[int]:
    """Parse '1-5', '3' or '1,4,7-9' into a sorted list of ids (CLI convenience)."""
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ValueError(f"invalid id range {text!r}: expected e.g. '1-5' or '1,3,7-9'") from None
        if first > last or first < 0:
            raise ValueError(f"invalid id range {text!r}: {part!r} is empty or negative")
        ids.update(range(first, last + 1))
    if not ids:
        raise ValueError(f"invalid id range {text!r}: no ids")
    return sorted(ids)
