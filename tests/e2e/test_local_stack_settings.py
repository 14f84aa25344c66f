"""``make run``'s settings: retries, the redrive policy, Sphere's pace and failures come from the environment."""

from __future__ import annotations

import os
from typing import Any

from devstack.stack import LocalStack, StackOptions

RETRIES = ("RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS", "MAX_RECEIVE_COUNT")
PACE = ("SPHERE_MAX_CALLS_PER_SECOND", "DELIVER_THREADS")


def test_retry_settings_from_the_environment_reach_the_functions_and_the_redrive_policy() -> None:
    # Given make run's environment asking for instant retries, a high receive count and a flaky Sphere
    options = StackOptions.from_environment(
        {
            "PORT": "0",
            "RETRY_BASE_SECONDS": "0",
            "RETRY_MAX_SECONDS": "2",
            "MAX_RECEIVE_COUNT": "60",
            "SPHERE_MAX_CALLS_PER_SECOND": "50",
            "DELIVER_THREADS": "3",
            "SPHERE_FAILURE_RATE": "0.2",
            "SPHERE_FAILURE_SEED": "11",
            "LOG_LEVEL": "ERROR",
        }
    )

    # When the local stack starts with them
    with LocalStack(options) as stack:
        seen = {name: os.environ[name] for name in (*RETRIES, *PACE)}
        assert stack.resources is not None
        assert stack.standin is not None
        redrive = stack.resources.max_receive_count
        random_faults: dict[str, Any] = stack.standin.pending_faults["random"]
        log_level = os.environ["POWERTOOLS_LOG_LEVEL"]

    # Then the deliver function retries at once, up to 60 receives, and the queue's redrive policy agrees
    assert seen == {
        "RETRY_BASE_SECONDS": "0",
        "RETRY_MAX_SECONDS": "2",
        "MAX_RECEIVE_COUNT": "60",
        "SPHERE_MAX_CALLS_PER_SECOND": "50",
        "DELIVER_THREADS": "3",
    }
    assert redrive == 60
    # And the stand-in fails a seeded fifth of Sphere calls; the functions log at the level asked
    assert (random_faults["rate"], random_faults["seed"]) == (0.2, 11)
    assert log_level == "ERROR"


def test_without_those_variables_the_template_values_hold() -> None:
    # Given no retry settings in the environment
    options = StackOptions.from_environment({"PORT": "0"})

    # When the local stack starts
    with LocalStack(options) as stack:
        seen = {name: os.environ.get(name) for name in (*RETRIES, *PACE)}
        assert stack.resources is not None
        redrive = stack.resources.max_receive_count

    # Then the template's values hold, as deployed (the thread count is the settings' own default)
    assert seen == {
        "RETRY_BASE_SECONDS": "10",
        "RETRY_MAX_SECONDS": "1800",
        "MAX_RECEIVE_COUNT": "15",
        "SPHERE_MAX_CALLS_PER_SECOND": "1000",
        "DELIVER_THREADS": None,
    }
    assert redrive == 15
