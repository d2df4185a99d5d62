import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.competition.rle import decode, encode


def test_column_major_one_indexed():
    mask = np.zeros((3, 3), bool)
    mask[0, 1] = mask[1, 1] = True  # column 1, rows 0-1: pixels 4 and 5 (1-indexed, top-to-bottom first)
    mask[2, 2] = True  # pixel 9
    assert encode(mask) == "4 2 9 1"
    np.testing.assert_array_equal(decode("4 2 9 1", (3, 3)), mask)


def test_empty_and_full():
    assert encode(np.zeros((101, 101))) == ""
    assert encode(np.ones((101, 101))) == "1 10201"
    assert not decode("", (101, 101)).any()
    assert not decode(float("nan"), (101, 101)).any()
    assert decode("1 10201", (101, 101)).all()


def test_runs_wrap_columns():
    mask = np.zeros((101, 101), bool)
    mask[100, 0] = mask[0, 1] = True  # last pixel of column 0 and first of column 1: one run
    assert encode(mask) == "101 2"


@settings(max_examples=200, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_roundtrip(mask):
    np.testing.assert_array_equal(decode(encode(mask), mask.shape), mask)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 101 * 101 - 1))
def test_single_pixel_roundtrip(pixel):
    mask = np.zeros(101 * 101, bool)
    mask[pixel] = True
    mask = mask.reshape(101, 101, order="F")
    assert encode(mask) == f"{pixel + 1} 1"
    np.testing.assert_array_equal(decode(encode(mask)), mask)


@pytest.mark.parametrize(
    "rle, message",
    [
        ("1 2 3", "odd count"),
        ("0 5", "positive"),
        ("5 0", "positive"),
        ("-3 2", "positive"),
        ("10 5 12 2", "overlap"),
        ("20 2 10 2", "unsorted"),
        ("10200 3", "past the"),
        ("1 x", "not an integer"),
    ],
)
def test_malformed_rle_names_the_id(rle, message):
    with pytest.raises(ValueError, match=message) as info:
        decode(rle, (101, 101), image_id="abc123")
    assert "abc123" in str(info.value)


def test_adjacent_runs_are_accepted():
    np.testing.assert_array_equal(decode("1 2 3 2", (2, 2)), np.ones((2, 2), bool))


@settings(max_examples=50, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(1, 12))))
def test_stack_functions_agree_with_single_ones(stack):
    from pipeline.competition.rle import decode_many, encode_many

    texts = encode_many(stack)
    assert texts == [encode(mask) for mask in stack]
    np.testing.assert_array_equal(decode_many(texts, [str(i) for i in range(len(stack))], stack.shape[1:]), stack)
