from __future__ import annotations

import pytest

from marketplace.orgs.uscc import ALPHABET, uscc_check_char, validate_uscc
from tests.factories import VALID_USCC


@pytest.mark.parametrize("code", VALID_USCC)
def test_real_world_codes_are_valid(code: str) -> None:
    assert validate_uscc(code) is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350200776049653B", "check character"),  # last character altered
        ("91310000607295546X", "check character"),
        ("911100001000013166", "organisation code"),  # GB 11714 digit wrong
        ("9135020077604965", "18 characters"),
        ("91350200776049653AA", "18 characters"),
        ("91350200776O49653A", "alphabet"),  # letter O is not in the alphabet
        ("9135020077604965IA", "alphabet"),
    ],
)
def test_invalid_codes_are_rejected_with_a_reason(code: str, reason: str) -> None:
    result = validate_uscc(code)
    assert result is not None and reason in result


def test_every_single_character_substitution_in_the_check_position_is_caught() -> None:
    code = VALID_USCC[0]
    for c in ALPHABET:
        candidate = code[:17] + c
        assert (validate_uscc(candidate) is None) == (c == code[17])


def test_check_character_matches_iso7064_mod31_definition() -> None:
    # Direct recomputation from the standard's definition: weights 3^i mod 31.
    body = VALID_USCC[1][:17]
    total = sum(ALPHABET.index(ch) * pow(3, i, 31) for i, ch in enumerate(body))
    assert uscc_check_char(body) == ALPHABET[(31 - total % 31) % 31] == VALID_USCC[1][17]
