"""A local Spark session started ahead of its step (in the step's kernel, while earlier steps run)
is the one the step gets, and only for the settings it was started with."""
from __future__ import annotations

import pytest

from memphis_incidents import spark_session as sessions

pytestmark = pytest.mark.slow


def test_the_session_started_ahead_is_handed_to_the_step_that_asks_with_its_settings():
    sessions.start_ahead("local[1]", {"spark.sql.shuffle.partitions": "3"})
    spark = sessions.spark_session("local[1]", "", {"spark.sql.shuffle.partitions": "3"})
    try:
        assert sessions.handed_over["started_ahead"] is True
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert spark.range(5).count() == 5
    finally:
        spark.stop()


def test_a_step_asking_with_other_settings_gets_a_session_of_its_own():
    sessions.start_ahead("local[1]", {"spark.sql.shuffle.partitions": "3"})
    spark = sessions.spark_session("local[1]", "", {"spark.sql.shuffle.partitions": "5"})
    try:
        assert sessions.handed_over["started_ahead"] is False
        assert spark.conf.get("spark.sql.shuffle.partitions") == "5"
        assert spark.range(5).count() == 5
    finally:
        spark.stop()


def test_without_a_session_started_ahead_the_step_starts_one():
    spark = sessions.spark_session("local[1]")
    try:
        assert sessions.handed_over["started_ahead"] is False
    finally:
        spark.stop()
