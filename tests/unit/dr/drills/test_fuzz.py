"""`invoke fuzz`'s result (dr/drills/fuzz.py): the rounds summarized as a FuzzResult, its JSON, its text and its
exit status. The campaign itself runs in tests/integration/test_campaign.py."""

from pathlib import Path

from campaign.rounds import Round
from dr.drills import fuzz
from dr.drills.fuzz import FuzzFailure, FuzzResult

ROUNDS = [Round(seed=7, examples=40, seconds=30.0, failure=None),
          Round(seed=9, examples=55, seconds=59.9, failure="AssertionError: doubled\nFalsifying example: batch=...")]


def test_the_rounds_summarized_with_their_failures():
    result = fuzz.summary(ROUNDS, 90.04, Path("/out"))
    assert result == FuzzResult(rounds=2, examples=95, seconds=90.0, out="/out", failures=[
        FuzzFailure(seed=9, text=ROUNDS[1].failure, log="/out/seed-9.log", saved="/out/seed-9")])
    assert FuzzResult.from_json(result.to_json()) == result
    assert result.exit_status() == 1
    assert result.render() == (
        "fuzz: 95 examples in 2 round(s), 1.5 min; 1 failing round(s)\n\n"
        "---- seed 9 (rerun: ./run invoke fuzz --seed 9; log /out/seed-9.log; failing batches saved in "
        "/out/seed-9/)\n"
        "AssertionError: doubled\nFalsifying example: batch=...")


def test_rounds_that_all_passed():
    result = fuzz.summary(ROUNDS[:1], 30.0, Path("/out"))
    assert result.render() == "fuzz: 40 examples in 1 round(s), 0.5 min; 0 failing round(s)"
    assert result.exit_status() == 0 and FuzzResult.from_json(result.to_json()) == result
    assert result.to_dict() == {"rounds": 1, "examples": 40, "seconds": 30.0, "out": "/out", "failures": []}
