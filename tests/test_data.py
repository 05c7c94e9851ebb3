"""Sales CSV loading and validation: every error names where (file and line, or series) and what."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from training.data import REQUIRED_COLUMNS, SalesDataError, load_sales, parse_id_range, select_series


def error_message(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


# --- happy path -------------------------------------------------------------------------------


def test_load_sales_types_and_values(sales_csv):
    frame = load_sales(sales_csv)
    assert list(frame.columns) == list(REQUIRED_COLUMNS)
    assert len(frame) == 2 * 2 * 120
    assert pd.api.types.is_datetime64_any_dtype(frame["date"])
    for column in ("store", "item", "sales"):
        assert frame[column].dtype == np.int64, column
    assert frame["date"].min() == pd.Timestamp("2013-01-01")
    assert frame["date"].max() == pd.Timestamp("2013-01-01") + pd.Timedelta(days=119)
    assert sorted(frame.groupby(["store", "item"]).groups) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert (frame["sales"] >= 0).all()


def test_load_sales_tolerates_whitespace_and_crlf(write_csv):
    path = write_csv("date, store ,item,sales\r\n2013-01-01, 1,2 , 7\r\n2013-01-02,1,2,0\r\n")
    frame = load_sales(path)
    assert frame["sales"].tolist() == [7, 0]
    assert frame["store"].tolist() == [1, 1]
    assert frame["item"].tolist() == [2, 2]
    assert frame["date"].tolist() == [pd.Timestamp("2013-01-01"), pd.Timestamp("2013-01-02")]


def test_select_series_returns_complete_ordered_series(sales_csv):
    frame = load_sales(sales_csv)
    # shuffle the rows: selection must put each series back in date order
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    series = select_series(shuffled, stores=[2, 1], items=[1, 2], source=sales_csv)
    assert [(s.store, s.item) for s in series] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for s in series:
        expected = frame[(frame.store == s.store) & (frame.item == s.item)].sort_values("date")
        assert s.start == pd.Timestamp("2013-01-01")
        assert s.sales.dtype == np.float32
        np.testing.assert_array_equal(s.sales, expected["sales"].to_numpy(dtype=np.float32))
        assert s.key == f"store {s.store} item {s.item}"


def test_select_series_subset(sales_csv):
    series = select_series(load_sales(sales_csv), stores=[2], items=[1], source=sales_csv)
    assert [(s.store, s.item, len(s.sales)) for s in series] == [(2, 1, 120)]


# --- file-level errors -------------------------------------------------------------------------


def test_file_not_found(tmp_path):
    path = tmp_path / "nope" / "train.csv"
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert str(path) in message
    assert "file not found" in message


def test_empty_file(write_csv):
    path = write_csv("", "empty.csv")
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert str(path) in message
    assert "empty" in message
    assert "date,store,item,sales" in message  # tells the user what header is expected


def test_header_only_file(write_csv):
    path = write_csv("date,store,item,sales\n", "header.csv")
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert str(path) in message
    assert "no data rows" in message


@pytest.mark.parametrize("missing", REQUIRED_COLUMNS)
def test_missing_column(write_csv, missing):
    columns = [c if c != missing else "units" for c in REQUIRED_COLUMNS]
    path = write_csv(",".join(columns) + "\n2013-01-01,1,1,5\n")
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert str(path) in message
    assert f"missing column(s) {missing};" in message
    assert "found " + ",".join(columns) in message


def test_unreadable_csv_names_file_and_line(write_lines, sales_lines):
    lines = sales_lines(stores=(1,), items=(1,), days=10)
    lines[3] += ",99"  # data row 3 is file line 5
    path = write_lines(lines)
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert str(path) in message
    assert "not a readable CSV file" in message
    assert "line 5" in message


# --- row-level errors: the line number counts the header as line 1 ------------------------------


@pytest.mark.parametrize("bad_date", ["2013-02-30", "01/05/2013", "yesterday", ""])
def test_unparsable_date_reports_line(write_lines, sales_lines, bad_date):
    lines = sales_lines()
    row = 6
    lines[row] = bad_date + lines[row][len("2013-01-07") :]
    path = write_lines(lines)
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert message.startswith(f"{path}: line {row + 2}: ")
    assert "column 'date' must be a date YYYY-MM-DD" in message
    assert repr(bad_date) in message


def test_first_bad_date_is_reported(write_lines, sales_lines):
    lines = sales_lines()
    lines[10] = "2013/01/11,1,1,4"
    lines[20] = "not-a-date,1,1,4"
    path = write_lines(lines)
    with pytest.raises(SalesDataError, match=r"line 12: column 'date'"):
        load_sales(path)


@pytest.mark.parametrize("bad_sales", ["3.5", "abc", "", "1e400"])
def test_non_integer_sales_reports_line(write_lines, sales_lines, bad_sales):
    lines = sales_lines()
    row = 41
    date, store, item, _ = lines[row].split(",")
    lines[row] = f"{date},{store},{item},{bad_sales}"
    path = write_lines(lines)
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert message.startswith(f"{path}: line {row + 2}: ")
    assert "column 'sales' must be an integer" in message
    assert repr(bad_sales) in message


@pytest.mark.parametrize("column", ["store", "item"])
def test_non_integer_ids_report_column(write_lines, sales_lines, column):
    lines = sales_lines()
    fields = dict(zip(REQUIRED_COLUMNS, lines[2].split(","), strict=True))
    fields[column] = "A"
    lines[2] = ",".join(fields.values())
    path = write_lines(lines)
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert message.startswith(f"{path}: line 4: ")
    assert f"column '{column}' must be an integer, got 'A'" in message


def test_negative_sales_reports_line(write_lines, sales_lines):
    lines = sales_lines()
    row = 130
    date, store, item, _ = lines[row].split(",")
    lines[row] = f"{date},{store},{item},-4"
    path = write_lines(lines)
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    message = error_message(excinfo)
    assert message.startswith(f"{path}: line {row + 2}: ")
    assert "column 'sales' must be >= 0" in message
    assert "'-4'" in message


def duplicate_day_error(write_lines, sales_lines) -> tuple[str, int]:
    lines = sales_lines()
    duplicate = lines[125]  # store 1 item 2, the 6th day
    assert duplicate.startswith("2013-01-06,1,2,")
    lines.append(duplicate.rsplit(",", 1)[0] + ",1")  # same store/item/day, different sales
    path = write_lines(lines)
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    return error_message(excinfo), len(lines) + 1


def test_duplicate_day_reports_line_day_and_store(write_lines, sales_lines, tmp_path):
    message, line = duplicate_day_error(write_lines, sales_lines)
    assert message.startswith(f"{tmp_path / 'sales.csv'}: line {line}: ")
    assert "duplicate day 2013-01-06 for store 1 item " in message


def test_duplicate_day_names_item_on_one_line(write_lines, sales_lines):
    message, _ = duplicate_day_error(write_lines, sales_lines)
    assert "duplicate day 2013-01-06 for store 1 item 2" in message
    assert "\n" not in message


def test_same_day_in_different_series_is_not_a_duplicate(write_lines):
    path = write_lines(["2013-01-01,1,1,3", "2013-01-01,1,2,3", "2013-01-01,2,1,3"])
    assert len(load_sales(path)) == 3


# --- series-level errors -----------------------------------------------------------------------


def test_missing_day_names_series_and_date(make_sales, write_sales_csv):
    frame = make_sales()
    gap = (frame.store == 2) & (frame.item == 1) & (frame.date == pd.Timestamp("2013-02-10"))
    assert gap.sum() == 1
    path = write_sales_csv(frame=frame[~gap])
    sales = load_sales(path)  # a gap is not a row error: the file itself is valid

    with pytest.raises(SalesDataError) as excinfo:
        select_series(sales, [1, 2], [1, 2], source=path)
    message = error_message(excinfo)
    assert message.startswith(f"{path}: store 2 item 1: ")
    assert "missing day 2013-02-10" in message
    assert "1 day(s) missing between 2013-01-01 and 2013-04-30" in message

    # the other series are complete, so a selection without store 2 item 1 works
    assert len(select_series(sales, [1, 2], [2], source=path)) == 2


def test_selection_without_rows(sales_csv):
    sales = load_sales(sales_csv)
    with pytest.raises(SalesDataError) as excinfo:
        select_series(sales, [7, 8], [1], source=sales_csv)
    message = error_message(excinfo)
    assert message.startswith(f"{sales_csv}: ")
    assert "no rows for stores [7, 8] and items [1]" in message


def test_selection_with_an_absent_pair_names_it(sales_csv):
    sales = load_sales(sales_csv)
    with pytest.raises(SalesDataError) as excinfo:
        select_series(sales, [1, 3], [2], source=sales_csv)
    message = error_message(excinfo)
    assert "no rows for store 3 item 2" in message
    assert "store 1 item 2" not in message


# --- regressions: each was a real bug in load_sales ---------------------------------------------


def test_line_numbers_count_blank_lines(write_csv):
    path = write_csv("date,store,item,sales\n2013-01-01,1,1,3\n\n2013-01-02,1,1,x\n")
    with pytest.raises(SalesDataError, match="line 4: column 'sales'"):
        load_sales(path)


def test_sales_too_large_for_int64_are_rejected(write_csv):
    path = write_csv("date,store,item,sales\n2013-01-01,1,1,1e30\n")
    with pytest.raises(SalesDataError, match="line 2: column 'sales'"):
        load_sales(path)


def test_unreadable_csv_message_is_one_line(write_csv):
    path = write_csv("date,store,item,sales\n2013-01-01,1,1,3\n2013-01-02,1,1,3,4\n")
    with pytest.raises(SalesDataError) as excinfo:
        load_sales(path)
    assert "line 3" in error_message(excinfo)
    assert "\n" not in error_message(excinfo)


def test_trailing_commas_do_not_shift_columns(write_csv):
    path = write_csv("date,store,item,sales\n2013-01-01,1,2,3,\n2013-01-02,1,2,4,\n")
    frame = load_sales(path)
    assert frame["sales"].tolist() == [3, 4]
    assert frame["item"].tolist() == [2, 2]


# --- parse_id_range ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-5", [1, 2, 3, 4, 5]),
        ("3", [3]),
        ("1,3,7-9", [1, 3, 7, 8, 9]),
        (" 2 , 4-5 ", [2, 4, 5]),
        ("5,1-3,2", [1, 2, 3, 5]),
        ("0", [0]),
        ("4-4", [4]),
    ],
)
def test_parse_id_range(text, expected):
    assert parse_id_range(text) == expected


@pytest.mark.parametrize("text", ["", " , ", "5-1", "a", "1-b", "1-2-3", "-3", "1.5", "1..3"])
def test_parse_id_range_rejects(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_id_range(text)
