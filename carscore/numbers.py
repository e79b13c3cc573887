"""Numbers as rule files and conditions may write them: ASCII decimal digits
only (no Arabic-Indic or full-width digits, no octal, hex or base-60 YAML 1.1
readings), finite, bounded in size, whole numbers read exactly."""

from __future__ import annotations

import math
import re
import unicodedata

# A number is at most 40 characters (17 significant digits and an exponent
# need far fewer) and a whole number fits in 64 bits, as a data column does.
MAX_NUMBER_CHARS = 40
MAX_INTEGER = 2**63 - 1

_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_WHOLE = re.compile(r"[-+]?[0-9]+")
# Words Python's float() reads as a number that is not finite.
NOT_FINITE = {"nan", "inf", "infinity"}


class NumberError(ValueError):
    """A number that cannot be read safely; ``maybe_text`` when what was
    written might have been meant as text (a code with a leading zero)."""

    def __init__(self, message: str, maybe_text: bool = False):
        super().__init__(message)
        self.message = message
        self.maybe_text = maybe_text


def shown(text: str, width: int = 30) -> str:
    """Text to quote in a one-line message: whitespace runs as one space,
    other unprintable characters escaped, cut short when long."""
    flat = " ".join(text.split())
    flat = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in flat)
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def looks_like_number(text: str) -> bool:
    """Whether text is written as a decimal number: optional sign, ASCII
    digits, optional '.' and exponent (38, -1.5, .5, 2., 1e3, 1.5E-3)."""
    return _DECIMAL.fullmatch(text) is not None


def read_number(text: str) -> int | float:
    """The value of a number in a rule file (a condition or a YAML value):
    whole numbers give an int, others a float. Raise NumberError with a
    sentence for anything that could be misread: digits other than 0-9, a
    leading zero (an octal number to some readers), a value too large to
    hold (or to parse: Python refuses int() of over 4300 digits), or too
    small to tell from zero."""
    quoted = shown(text)
    if any(unicodedata.category(ch) == "Nd" and not ch.isascii() for ch in text):
        raise NumberError(f"'{quoted}' is written with digits other than 0-9: write numbers with 0-9")
    if len(text) > MAX_NUMBER_CHARS:
        raise NumberError(f"the number '{quoted}' is too long (at most {MAX_NUMBER_CHARS} characters)")
    if not looks_like_number(text):
        raise NumberError(f"'{quoted}' is not a decimal number: write it with digits 0-9, an optional '.' and exponent", True)
    digits = text.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        raise NumberError(f"'{quoted}' starts with 0, which some readers take for an octal number: leave the 0 out", True)
    if _WHOLE.fullmatch(text):
        whole = int(text)  # exact: never through a float
        if abs(whole) > MAX_INTEGER:
            raise NumberError(f"the number '{quoted}' is too large (at most {MAX_INTEGER})")
        return whole
    value = float(text)
    if not math.isfinite(value):
        raise NumberError(f"the number '{quoted}' is too large to hold")
    mantissa = re.split("[eE]", digits)[0]
    if value == 0 and any(ch in "123456789" for ch in mantissa):
        raise NumberError(f"the number '{quoted}' is too small to tell from 0")
    return value
