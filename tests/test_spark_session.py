"""A local Spark session started ahead of its step (in the step's kernel, while earlier steps run)
is the one the step gets, and only for the settings it was started with."""
from __future__ import annotations

import pytest

from memphis_incidents import spark_session as sessions

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("asked, handed_over", [("3", True), ("5", False)],
                         ids=["same settings: the session started ahead", "other settings: a session of its own"])
def test_the_session_started_ahead_goes_to_the_step_that_asks_with_its_settings_only(asked, handed_over):
    sessions.start_ahead("local[1]", {"spark.sql.shuffle.partitions": "3"})
    sessions._ahead[0].session.result(timeout=120)
    ahead_jvm = sessions.SparkContext._gateway.proc
    spark = sessions.spark_session("local[1]", "", {"spark.sql.shuffle.partitions": asked})
    try:
        assert sessions.handed_over["started_ahead"] is handed_over
        assert spark.conf.get("spark.sql.shuffle.partitions") == asked
        assert spark.range(5).count() == 5
        # other settings get a JVM of their own: a JVM's heap and flags are fixed when it starts
        assert (ahead_jvm.poll() is None) is handed_over
    finally:
        sessions.stop_session(spark)


def test_without_a_session_started_ahead_the_step_starts_one():
    spark = sessions.spark_session("local[1]")
    try:
        assert sessions.handed_over["started_ahead"] is False
    finally:
        sessions.stop_session(spark)


def test_stopping_a_local_session_ends_its_jvm_and_a_later_session_starts_another():
    spark = sessions.spark_session("local[1]")
    jvm = sessions.SparkContext._gateway.proc
    sessions.stop_session(spark)
    assert jvm.poll() is not None, "the driver JVM outlived its session"
    again = sessions.spark_session("local[1]")
    try:
        assert sessions.SparkContext._gateway.proc.pid != jvm.pid
        assert again.range(3).count() == 3
    finally:
        sessions.stop_session(again)
