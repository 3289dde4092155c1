"""Exercises of notebook 02 (pretrained proxy): the held-out fit, the fooled Kodim01 (Fig. 6), the gaps of Fig. 7."""

from proxiqa_lab.exercises.core import Exercise, register

NB = "02_pretrained_proxy_failure"

_RUNS = {"frozen": "pretrained", "alternating": "alternating", "alternating_0.5": "alternating_alpha0.5"}


def _gap(results: dict, panel: str) -> dict:
    return next(v for k, v in results["training_gap"].items() if k.startswith(panel))


register(
    Exercise(
        "02.1", NB, "How well does the pretrained proxy predict VMAF?", "read", "seconds",
        expected=lambda r: r["pretrained_proxy"]["plcc"], tolerance=0.002,
        hint="section 1's table scores the proxy on patches of held-out images; PLCC is a correlation, between "
             "-1 and 1, give it to 3 decimals",
    ),
    Exercise(
        "02.2", NB, "How far is the frozen proxy fooled on the image?", "read", "seconds",
        expected=lambda r: r["pretrained"]["proxy"] - r["pretrained"]["true"], tolerance=0.15,
        hint="Fig. 6 (the first panel of section 4) gives the proxy's score and the true VMAF of the decoded image; "
             "subtract the true score from the proxy's, in VMAF points, to one decimal",
    ),
    Exercise(
        "02.3", NB, "Which run decodes the image best?", "predict", "seconds",
        expected=lambda r: max(_RUNS, key=lambda k: r[_RUNS[k]]["true"]), choices=tuple(_RUNS),
        hint="look at the true score (not the proxy's) in the captions under the decoded images of section 4's "
             "three figures",
    ),
    Exercise(
        "02.4", NB, "Fig. 7a against Fig. 7b, in numbers", "read", "seconds",
        expected=lambda r: _gap(r, "(a)")["mean_abs_gap"] / _gap(r, "(b)")["mean_abs_gap"], rel_tolerance=0.02,
        hint="the gaps table under Fig. 7 has a mean_abs_gap for every panel; divide panel (a)'s by panel (b)'s (a "
             "ratio, not a difference)",
    ),
    Exercise(
        "02.5", NB, "A good fit is not a safe loss", "read", "seconds",
        good_answer=("the proxy was fitted on JPEG, JPEG 2000, blur and noise distortions; the codec's outputs are "
                     "none of these, so the held-out PLCC says nothing about them",
                     "a frozen network is a fixed target: the codec, trained to raise M̂, searches for inputs M̂ "
                     "over-rates (an adversarial example) and nothing corrects the proxy",
                     "Fig. 7a: the proxy's score climbs past 100 (above the metric's own bound) while the true VMAF "
                     "of the patches falls near 0; Fig. 7b shows the two curves together because the proxy is "
                     "refitted to the newest reconstructions after every codec step",
                     "the paper's remedy is the alternating update of Fig. 3, not a better pretraining set"),
    ),
    Exercise(
        "02.6", NB, "Another image", "change", "~1 min",
        good_answer=("sets IMAGE to another Kodak image (e.g. \"kodim23\") and reruns; the models are not retrained",
                     "the frozen proxy over-rates that image too: its score stays high while the true VMAF is low, "
                     "so the fooling is a property of the codec, not of Kodim01",
                     "the alternating α = 1 run still agrees with the true score, at a very low rate and low "
                     "quality; α = 0.5 gives a usable image"),
    ),
)
