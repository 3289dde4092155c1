"""Exercises of notebook 08 (runtime): Table V and Fig. 12 read as ratios of the student's own timings."""

from proxiqa_lab.exercises.core import Exercise, register

NB = "08_runtime"

#: Table V's codec names in the default RUNTIME_CODECS (the learned ones as the table writes them).
CODECS = ("jpeg", "jpeg2000", "hevc444", "BLS MSE", "BLS VMAF_p", "BLS N=192 (untrained, timing only)")


def _cpu(results: dict) -> dict[str, dict]:
    return {r["codec"]: r for r in results["table_v"] if r["device"] == "cpu"}


def fastest_encoder(results: dict) -> str:
    rows = _cpu(results)
    return min(rows, key=lambda c: rows[c]["encode_ms"])


def hevc_low_rate(results: dict) -> float:
    """hevc444's normalised encode time at its lowest-rate point (Fig. 12)."""
    rows = [r for r in results["fig12"] if r["codec"] == "hevc444" and r["device"] == "cpu"]
    return min(rows, key=lambda r: r["bpp"])["encode_norm"]


register(
    Exercise(
        "08.1", NB, "The fastest encoder", "read", "seconds",
        expected=fastest_encoder, choices=CODECS,
        hint="Table V (section 2) on the cpu rows: the smallest encode_ms; the bar chart's log axis makes the "
             "short bars easy to misjudge, read the table",
    ),
    Exercise(
        "08.2", NB, "Does the proxy cost anything at test time?", "read", "seconds",
        expected=lambda r: _cpu(r)["BLS VMAF_p"]["encode_ms"] / _cpu(r)["BLS MSE"]["encode_ms"], rel_tolerance=0.02,
        hint="divide BLS VMAF_p's CPU encode_ms by BLS MSE's (Table V, section 2); a ratio, so 1 means the same time",
    ),
    Exercise(
        "08.3", NB, "HEVC at its lowest rate", "read", "seconds",
        expected=hevc_low_rate, tolerance=0.01,
        hint="in section 3's table (or Fig. 12), take hevc444's row with the smallest bpp, column encode_norm: its "
             "time divided by its time near 2 bpp (no unit, two decimals)",
    ),
    Exercise(
        "08.4", NB, "Decode against encode for the learned codec", "predict", "seconds",
        expected=lambda r: "longer" if _cpu(r)["BLS MSE"]["decode_ms"] > _cpu(r)["BLS MSE"]["encode_ms"] else "shorter",
        choices=("longer", "shorter"),
        hint="compare BLS MSE's decode_ms with its encode_ms in Table V (cpu rows); think of what the decoder runs "
             "that the encoder does not need to finish",
    ),
    Exercise(
        "08.5", NB, "Three times wider", "change", "~1 min",
        good_answer=("compares BLS N=192 (untrained, timing only) with BLS MSE (N=64): a ratio of encode times "
                     "of several times, read from Table V",
                     "a convolution's cost grows with the product of its input and output channels, so about "
                     "(192/64)² = 9× the operations, less in time where memory traffic or the entropy coder "
                     "dominates",
                     "sets PAPER_WIDTH = False to drop it, and notes the timing needs no training: runtime depends "
                     "on the architecture only"),
    ),
)
