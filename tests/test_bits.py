"""Bit-order conventions of qhn.bits against Python's own binary formatting.

Oracle: ``format(i, f"0{n}b")`` writes the most significant bit first, which is our qubit 0.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qhn.bits import (
    MAX_INDEX_BITS,
    all_bits,
    bits_to_index,
    bits_to_weights,
    bitstring,
    distinct_rows,
    index_to_bits,
    iter_bit_chunks,
    parse_bitstring,
    place_values,
    weights_to_bits,
)
from qhn.errors import ConfigError, MemoryBudgetError


def python_bits(index: int, n: int) -> list[int]:
    return [int(c) for c in format(index, f"0{n}b")]


def test_qubit_zero_is_the_most_significant_bit():
    assert index_to_bits(1, 3).tolist() == [0, 0, 1]
    assert index_to_bits(4, 3).tolist() == [1, 0, 0]
    assert bits_to_index(torch.tensor([1, 0, 0])).item() == 4
    assert bitstring(5, 4) == "0101"
    assert place_values(4).tolist() == [8, 4, 2, 1]


@pytest.mark.parametrize("n", range(1, 9))
def test_every_index_matches_python_format(n):
    indices = torch.arange(2**n)
    bits = index_to_bits(indices, n)
    assert bits.dtype == torch.uint8
    assert bits.shape == (2**n, n)
    assert bits.tolist() == [python_bits(i, n) for i in range(2**n)]
    assert torch.equal(bits_to_index(bits), indices)
    assert [bitstring(i, n) for i in range(2**n)] == [format(i, f"0{n}b") for i in range(2**n)]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, MAX_INDEX_BITS))
def test_roundtrip_up_to_the_largest_index(data, n):
    index = data.draw(st.integers(0, 2**n - 1))
    bits = index_to_bits(index, n)
    assert bits.tolist() == python_bits(index, n)
    assert bits_to_index(bits).item() == index
    text = bitstring(index, n)
    assert text == format(index, f"0{n}b")
    assert torch.equal(parse_bitstring(text), bits)


def test_batched_shapes_keep_leading_dimensions():
    index = torch.tensor([[0, 5], [7, 2]])
    bits = index_to_bits(index, 3)
    assert bits.shape == (2, 2, 3)
    assert bits[0, 1].tolist() == [1, 0, 1]
    assert torch.equal(bits_to_index(bits), index)


def test_default_weights_are_two_b_minus_one():
    bits = torch.tensor([[0, 1, 1, 0]], dtype=torch.uint8)
    weights = bits_to_weights(bits)
    assert weights.dtype == torch.float64
    assert weights.tolist() == [[-1.0, 1.0, 1.0, -1.0]]
    assert torch.equal(weights_to_bits(weights), bits)


@pytest.mark.parametrize(
    ("alphabet", "slope", "offset"),
    [((0.0, 1.0), 1, 0), ((-1.0, 1.0), 2, -1), ((-2.0, 1.0), 3, -2), ((-3.0, 1.0), 4, -3)],
)
def test_alphabets_are_affine_in_the_bit(alphabet, slope, offset):
    bits = all_bits(4)
    weights = bits_to_weights(bits, alphabet, dtype=torch.float32)
    assert weights.dtype == torch.float32
    assert torch.equal(weights, (slope * bits.to(torch.int64) + offset).to(torch.float32))
    assert torch.equal(weights_to_bits(weights, alphabet), bits)


def test_weights_outside_the_alphabet_are_refused():
    with pytest.raises(ConfigError, match=r"weights must be -1.0 or 1.0"):
        weights_to_bits(torch.tensor([-1.0, 0.5]))


@pytest.mark.parametrize(
    ("n", "chunk"), [(1, 1), (3, 1), (3, 3), (4, 5), (5, 32), (5, 100), (9, 64)]
)
def test_chunks_cover_every_index_once_in_order(n, chunk):
    firsts, pieces = [], []
    for first, bits in iter_bit_chunks(n, chunk):
        assert bits.shape[1] == n
        assert 1 <= bits.shape[0] <= chunk
        firsts.append(first)
        pieces.append(bits)
    joined = torch.cat(pieces)
    assert joined.tolist() == [python_bits(i, n) for i in range(2**n)]
    sizes = [p.shape[0] for p in pieces]
    assert firsts == [sum(sizes[:k]) for k in range(len(sizes))]


def test_chunks_respect_start_and_stop():
    chunks = list(iter_bit_chunks(6, 4, start=5, stop=15))
    assert [first for first, _ in chunks] == [5, 9, 13]
    joined = torch.cat([bits for _, bits in chunks])
    assert joined.tolist() == [python_bits(i, 6) for i in range(5, 15)]
    assert list(iter_bit_chunks(6, 4, start=7, stop=7)) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 0}, r"chunk_size must be positive, got 0"),
        ({"start": 3, "stop": 2}, r"start=3, stop=2"),
        ({"stop": 17}, r"stop <= 16"),
        ({"start": -1}, r"start=-1"),
    ],
)
def test_chunks_refuse_bad_ranges(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        list(iter_bit_chunks(4, **kwargs))


def test_all_bits_is_the_full_table_in_index_order():
    assert all_bits(3).tolist() == [python_bits(i, 3) for i in range(8)]


def test_all_bits_refuses_over_budget_before_allocating():
    # 2**20 strings of 20 bytes: 20,971,520 bytes.
    with pytest.raises(MemoryBudgetError, match=r"20 bits need 20971520 bytes.*budget of 1000000"):
        all_bits(20, max_bytes=1_000_000)
    # 2**40 · 40 bytes (40 TiB) would never fit: it must refuse, not try.
    with pytest.raises(MemoryBudgetError, match=r"iter_bit_chunks"):
        all_bits(40)


@pytest.mark.parametrize("text", ["", "0120", "abc", "1 0", "01b"])
def test_parse_bitstring_refuses_other_characters(text):
    with pytest.raises(ConfigError, match="bitstring is a non-empty string of 0 and 1"):
        parse_bitstring(text)


def test_out_of_range_inputs_name_the_problem():
    with pytest.raises(ConfigError, match=r"valid 0\.\.7, got values in \[0, 8\]"):
        index_to_bits(torch.tensor([0, 8]), 3)
    with pytest.raises(ConfigError, match=r"got values in \[-1, -1\]"):
        index_to_bits(-1, 3)
    with pytest.raises(ConfigError, match="bits must be 0 or 1"):
        bits_to_index(torch.tensor([0, 2, 1]))
    with pytest.raises(ConfigError, match="trailing bit dimension"):
        bits_to_index(torch.tensor(1))
    with pytest.raises(ConfigError, match=r"positive integer, got 0"):
        index_to_bits(0, 0)
    with pytest.raises(ConfigError, match=rf"at most {MAX_INDEX_BITS} bits.*got 63"):
        place_values(63)


@pytest.mark.parametrize("n", [1, 5, 20, 61, 62, 63, 124, 125, 300])
@pytest.mark.parametrize("seed", [0, 1])
def test_distinct_rows_equal_torchs_row_wise_unique(n, seed):
    """Oracle: ``torch.unique(dim=0)`` (a row-wise sort); rows drawn from a small pool so that
    most repeat, at widths around the one- and two-word packing boundaries and past them."""
    generator = torch.Generator().manual_seed(seed)
    pool = torch.randint(0, 2, (37, n), dtype=torch.uint8, generator=generator)
    bits = pool[torch.randint(0, pool.shape[0], (500,), generator=generator)]
    expected = torch.unique(bits, dim=0, return_inverse=True, return_counts=True)
    for got, want in zip(distinct_rows(bits), expected, strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)
    as_float = distinct_rows(bits.to(torch.float64))[0]
    assert as_float.dtype == torch.float64 and torch.equal(as_float, expected[0].to(torch.float64))


def test_distinct_rows_of_rows_differing_only_in_the_last_bit_of_a_word():
    """Rows equal in their first word and differing in the second word's last bit, or in bit
    61 (the first word's last): each is its own distinct row, in lexicographic order."""
    rows = torch.zeros(4, 124, dtype=torch.uint8)
    rows[1, 123] = 1
    rows[2, 61] = 1
    rows[3, 61] = rows[3, 123] = 1
    bits = rows[[3, 0, 2, 1, 0, 3]]
    distinct, inverse, counts = distinct_rows(bits)
    assert torch.equal(distinct, rows)
    assert inverse.tolist() == [3, 0, 2, 1, 0, 3] and counts.tolist() == [2, 1, 1, 2]


def test_distinct_rows_of_nothing_and_of_bad_shapes():
    distinct, inverse, counts = distinct_rows(torch.zeros(0, 7, dtype=torch.uint8))
    assert distinct.shape == (0, 7) and inverse.numel() == 0 and counts.numel() == 0
    with pytest.raises(ConfigError, match="matrix"):
        distinct_rows(torch.zeros(3, dtype=torch.uint8))
