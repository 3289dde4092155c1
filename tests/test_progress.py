"""Progress bars: widgets live, one finished text line in a notebook run headlessly."""

from __future__ import annotations

import time

from proxiqa_lab.progress import HEADLESS_ENV, headless, tqdm


def test_headless_bar_leaves_only_its_final_state(monkeypatch, capsys):
    monkeypatch.setenv(HEADLESS_ENV, "1")
    assert headless()
    for _ in tqdm(range(12), desc="steps"):
        time.sleep(0.001)
    err = capsys.readouterr().err
    assert "12/12" in err and "0/12" not in err


def test_live_bar_is_tqdm_auto(monkeypatch):
    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    from tqdm.auto import tqdm as auto

    bar = tqdm(total=1, disable=True)
    assert not headless() and isinstance(bar, auto)
