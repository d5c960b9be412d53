"""The password policy: strength estimated by zxcvbn (Wheeler, "zxcvbn: Low-Budget Password Strength Estimation",
USENIX Security 2016), whose dictionaries ship with the package (offline): passwords leaked in breaches, common
words, names, keyboard patterns, dates, repeats and sequences, and the user's own email.

Length alone lets ``password123`` or ``aaaaaaaaaa`` through; zxcvbn scores them 0-1. NIST SP 800-63B §5.1.1.2 asks
for a check against "passwords obtained from previous breach corpuses" and "dictionary words", which is what the
score measures; the minimum score is ``PASSWORD_MIN_SCORE`` (default 3, "safely unguessable: moderate protection
from offline slow-hash scenario").
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

from smart_trader.core.errors import InvalidInputError

MIN_LENGTH = 10
MAX_LENGTH = 128
ZXCVBN_MAX_LENGTH = 72  # zxcvbn's own cut-off (its matching is quadratic in the length)


def check_password(password: str, email: str, min_score: int) -> None:
    """Accept ``password`` for the user ``email`` or say why not.

    Raises:
        InvalidInputError: shorter than 10 or longer than 128 characters, or a zxcvbn score under ``min_score``
            (0-4), with zxcvbn's warning and suggestions in the message.
    """
    if len(password) < MIN_LENGTH:
        raise InvalidInputError(f"the password is too short: use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInputError(f"the password is too long: at most {MAX_LENGTH} characters")
    user_inputs = [p for p in re.split(r"[@._+-]+", email.lower()) if len(p) >= 3] + [email.lower()]
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=user_inputs, max_length=ZXCVBN_MAX_LENGTH)
    score = int(result["score"])
    if score >= min_score:
        return
    feedback = result.get("feedback") or {}
    hints = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
    said = " ".join(h.strip() for h in hints if h and h.strip())
    raise InvalidInputError(
        f"the password is too easy to guess (strength {score} of 4, at least {min_score} needed)"
        + (f": {said}" if said else ": add words or characters that are not in a dictionary or a common pattern")
    )
