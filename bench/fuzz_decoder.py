"""Fuzz the SenML telemetry decoder for N seconds: coverage-guided with atheris
(libFuzzer) when it is installed (``pip install -e '.[fuzz]'``), else with
hypothesis generating bytes and near-valid packs.

    python bench/fuzz_decoder.py --seconds 300              # atheris if installed
    python bench/fuzz_decoder.py --seconds 60 --engine hypothesis

What counts as a crash: :func:`agrimatch.contract.telemetry.decode_telemetry`
raising anything but ``MessageRejected`` (its docstring promises that whatever
the bytes), a reading that is not a known sensor with a finite value inside its
range, or the clean-pack fast path disagreeing with the full codec (the two must
give the same result; issue 10 found one such input). atheris writes a crashing
input to ``crash-<sha1>`` in the working directory; rerun it with
``python bench/fuzz_decoder.py crash-<sha1>``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

NOW = 1_764_072_000.0  # a fixed "now": relative times and the time limits are deterministic
DEVICE = "dev-7"


def _seeds() -> list[bytes]:
    """Valid packs and one of each known bad class: where the fuzzer starts mutating."""
    from agrimatch.contract.sensors import SENSORS
    from agrimatch.contract.telemetry import Reading, base_name, encode_telemetry

    t_ms = int((NOW - 60) * 1000)
    readings = [Reading(name, t_ms, (s.minimum + s.maximum) / 2) for name, s in SENSORS.items()]
    bn = base_name(DEVICE)
    return [
        encode_telemetry(DEVICE, readings),
        encode_telemetry(DEVICE, readings[:1]),
        json.dumps(
            [
                {"bn": bn, "bt": NOW - 60, "bver": 5, "n": "air_temp", "u": "Cel", "v": 1},
                {"n": "air_temp", "t": 1, "v": 2},
                {"n": "x", "vs": "a"},
            ]
        ).encode(),
        json.dumps([{"bn": bn, "bu": None, "n": "air_temp", "v": 1e309}]).encode(),
        b'[{"bn":"urn:dev:other:","n":"air_temp","v":1}]',
        b"[]",
        b"{}",
        b"\xff\xfe",
    ]


def check_one(payload: bytes) -> None:
    """Decode ``payload`` both ways; raise AssertionError (or whatever leaked) on a defect."""
    from agrimatch.contract import telemetry
    from agrimatch.contract.sensors import SENSORS

    def decode() -> Any:
        try:
            return telemetry.decode_telemetry(payload, DEVICE, NOW)
        except telemetry.MessageRejected as exc:
            return ("rejected", exc.reason)

    fast = decode()
    original = telemetry._decode_clean_pack
    telemetry._decode_clean_pack = lambda *args: None
    try:
        slow = decode()
    finally:
        telemetry._decode_clean_pack = original
    assert fast == slow, f"fast path {fast!r} != full codec {slow!r}"
    if isinstance(fast, tuple):
        return
    for reading in fast.readings:
        spec = SENSORS.get(reading.sensor)
        assert spec is not None, f"unknown sensor stored: {reading.sensor!r}"
        assert math.isfinite(reading.value), f"non-finite value stored: {reading!r}"
        assert spec.minimum <= reading.value <= spec.maximum, f"out of range: {reading!r}"


def run_atheris(seconds: int, corpus: list[str]) -> None:
    import atheris  # type: ignore[import-not-found,unused-ignore]

    with atheris.instrument_imports():
        import agrimatch.contract.senml
        import agrimatch.contract.telemetry  # noqa: F401

    seed_dir = None
    if not corpus:
        import tempfile
        from pathlib import Path

        seed_dir = Path(tempfile.mkdtemp(prefix="fuzz-decoder-"))
        for i, seed in enumerate(_seeds()):
            (seed_dir / f"seed-{i}").write_bytes(seed)
        corpus = [str(seed_dir)]
    args = [sys.argv[0], f"-max_total_time={seconds}", "-max_len=4096", "-print_final_stats=1"]
    atheris.Setup(args + corpus, check_one)
    atheris.Fuzz()  # exits the process: libFuzzer prints "Done N runs in S second(s)"


def run_hypothesis(seconds: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from agrimatch.contract.sensors import SENSORS

    names = st.sampled_from([*SENSORS, "x", "urn:dev:other:air_temp", ""])
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8)
    )
    keys = st.sampled_from(["bn", "bt", "bu", "bv", "bver", "n", "u", "v", "vs", "vb", "t", "s"])
    record = st.dictionaries(keys, st.one_of(scalars, names), max_size=7)
    packs = st.lists(record, max_size=6).map(lambda p: json.dumps(p).encode())
    inputs = st.one_of(st.binary(max_size=512), packs, st.sampled_from(_seeds()))
    tried = 0

    # Rounds of a few thousand examples, each with a fresh random seed, until the time is
    # up: hypothesis has no time budget of its own, and shrinks only a real failure.
    @settings(
        max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(inputs)
    def fuzz(payload: bytes) -> None:
        nonlocal tried
        tried += 1
        check_one(payload)

    started = time.monotonic()
    while time.monotonic() - started < seconds:
        fuzz()
    print(f"hypothesis: {tried} inputs in {time.monotonic() - started:.0f} s, no crash")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("corpus", nargs="*", help="atheris: corpus dirs or one crash file")
    options = parser.parse_args()
    engine = options.engine
    if engine == "auto":
        try:
            import atheris  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            engine = "hypothesis"
        else:
            engine = "atheris"
    if engine == "atheris":
        run_atheris(options.seconds, options.corpus)
    else:
        run_hypothesis(options.seconds)


if __name__ == "__main__":
    main()
