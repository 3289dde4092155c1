"""Exercises of notebook 00 (quickstart): reading the scores, comparing rates, a pair of one's own."""

from proxiqa_lab.exercises.core import Exercise, register

NB = "00_quickstart"

register(
    Exercise(
        "00.1", NB, "Read VMAF off the table", "read", "seconds",
        expected=lambda r: r["jpeg"]["vmaf"], tolerance=0.05,
        hint="section 3's table lists the JPEG's scores; VMAF is on a 0-100 scale, give it to one decimal or more",
    ),
    Exercise(
        "00.2", NB, "How many more bits does the learned codec spend?", "read", "seconds",
        expected=lambda r: r["learned"]["bpp"] / r["jpeg"]["bpp"], rel_tolerance=0.02,
        hint="divide the learned codec's bpp (section 4) by the JPEG's (section 3); the answer is a ratio, not a "
             "difference",
    ),
    Exercise(
        "00.3", NB, "Which codec scores the higher VMAF?", "predict", "seconds",
        expected=lambda r: "learned" if r["learned"]["vmaf"] > r["jpeg"]["vmaf"] else "jpeg",
        choices=("learned", "jpeg"),
        hint="compare the vmaf entries of sections 3 and 4, and remember that the two are not at the same rate",
    ),
    Exercise(
        "00.4", NB, "Score a pair of your own", "extend", "~1 min",
        good_answer=("calls studies.roundtrip (or proxiqa_lab.metrics.score) on an image of their own",
                     "reports the bpp with the scores: a score means nothing without its rate",
                     "notes that VMAF needs images of at least 33 px a side"),
    ),
    Exercise(
        "00.5", NB, "Halve the rate", "change", "~1 min",
        good_answer=("sets TARGET_BPP to half its value and reruns sections 3 and 4",
                     "VMAF falls faster than PSNR_avg as the rate drops (VMAF saturates near 100 at high rates "
                     "and punishes blocking at low ones)",
                     "the learned codec's rate does not change: it is set by its λ, not by TARGET_BPP"),
    ),
)
