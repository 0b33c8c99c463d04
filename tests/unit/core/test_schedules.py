"""Learning-rate schedules on known values: warm-up, poly (DeepLab), cosine and constant."""

from __future__ import annotations

import math

import pytest

from components.core.schedules import WarmupSchedule


@pytest.mark.parametrize("name, expected", [
    ("poly", lambda progress: 0.01 * (1 - progress) ** 0.9),
    ("cosine", lambda progress: 0.01 * 0.5 * (1 + math.cos(math.pi * progress))),
    ("constant", lambda progress: 0.01),
])
def test_linear_warm_up_then_decay(name, expected):
    schedule = WarmupSchedule(name, 0.01, total_steps=110, warmup_steps=10)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(0.005)
    for step in (10, 35, 60, 109, 110, 200):
        assert float(schedule(step)) == pytest.approx(expected(min((step - 10) / 100, 1.0)), abs=1e-9)


def test_without_warm_up_the_first_step_has_the_peak_rate():
    assert float(WarmupSchedule("poly", 0.007, total_steps=100)(0)) == pytest.approx(0.007)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        WarmupSchedule("step", 0.1, 10)
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        WarmupSchedule("poly", 0.1, 10, warmup_steps=10)


def test_the_config_knows_every_schedule():
    from components.core.config import SCHEDULES
    from components.core.schedules import SCHEDULE_NAMES

    assert SCHEDULES == SCHEDULE_NAMES
