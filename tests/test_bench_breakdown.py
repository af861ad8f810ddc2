"""``bench/breakdown.py``: the timers behind figure 2's breakdown and figure 11's counts.

The figures themselves run in ``test_bench_smoke.py``; here, what the numbers mean: a
step's time excludes the steps it calls, each statement lands in the step that ran it,
and the functions are themselves again once the timers are gone.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from bench.breakdown import EVERYTHING_ELSE, Step, StepTimer, statement_kind

MODULE = "tests._breakdown_target"


class Base:
    def inherited(self) -> str:
        return "base"


class Child(Base):
    pass


@pytest.fixture
def target() -> Iterator[types.ModuleType]:
    """A module of three functions: ``outer`` sleeps and calls ``inner``, which queries."""
    module = types.ModuleType(MODULE)

    def inner() -> int:
        time.sleep(0.02)
        return get_user_model().objects.count()

    def outer() -> int:
        time.sleep(0.01)
        return module.inner()

    def loose() -> int:
        return get_user_model().objects.filter(username="nobody").count()

    module.inner, module.outer, module.loose = inner, outer, loose
    module.Child = Child
    sys.modules[MODULE] = module
    yield module
    del sys.modules[MODULE]


def timer_for() -> StepTimer:
    return StepTimer(
        [
            Step("outer", (f"{MODULE}:outer",)),
            Step("inner", (f"{MODULE}:inner",)),
            Step("inherited", (f"{MODULE}:Child.inherited",)),
        ]
    )


@pytest.mark.django_db
def test_a_step_time_excludes_the_steps_it_calls(target: types.ModuleType) -> None:
    timer = timer_for()
    with timer.installed(), timer.measuring():
        target.outer()
    (sample,) = timer.samples
    assert 0.02 <= sample.seconds["inner"] < 0.2
    # outer slept 10 ms itself; the 20 ms of inner are inner's alone.
    assert 0.01 <= sample.seconds["outer"] < 0.02 + 0.005
    assert sample.total >= sample.seconds["outer"] + sample.seconds["inner"]
    assert sample.seconds[EVERYTHING_ELSE] == pytest.approx(
        sample.total - sample.seconds["outer"] - sample.seconds["inner"], abs=1e-6
    )


@pytest.mark.django_db
def test_each_statement_lands_in_the_step_that_ran_it(target: types.ModuleType) -> None:
    timer = timer_for()
    with timer.installed():
        with timer.measuring():
            target.outer()
            target.loose()  # no step of its own
        target.loose()  # not measured at all
    assert [statement_kind(sql) for sql in timer.statements_of("inner")] == ["SELECT auth_user"]
    assert timer.statements_of("outer") == []
    assert [statement_kind(sql) for sql in timer.statements_of(EVERYTHING_ELSE)] == [
        "SELECT auth_user"
    ]
    assert timer.queries_per_callback() == [2]


@pytest.mark.django_db(transaction=True)
def test_commits_are_counted_as_statements(target: types.ModuleType) -> None:
    timer = timer_for()
    with timer.installed(), timer.measuring(), transaction.atomic():
        target.loose()
    assert "COMMIT" in [statement_kind(sql) for sql in timer.statements_of(EVERYTHING_ELSE)]


@pytest.mark.django_db
def test_the_functions_are_themselves_again_afterwards(target: types.ModuleType) -> None:
    outer, inner = target.outer, target.inner
    wrapper_class = type(connections["default"])
    own_commit = "_commit" in wrapper_class.__dict__
    timer = timer_for()
    with timer.installed():
        assert target.outer is not outer
        assert "inherited" in Child.__dict__  # wrapped on the subclass itself
        assert Child().inherited() == "base"
    assert target.outer is outer and target.inner is inner
    assert "inherited" not in Child.__dict__  # the inherited method shows again
    assert ("_commit" in wrapper_class.__dict__) == own_commit
    assert not connection.execute_wrappers


def test_statements_are_shown_by_kind_and_table_not_values() -> None:
    assert statement_kind('SELECT "a"."id" FROM "auth_user" WHERE "a"."x" = 1') == (
        "SELECT auth_user"
    )
    assert statement_kind('UPDATE "django_session" SET "x" = 1') == "UPDATE django_session"
    assert statement_kind('INSERT INTO "t" ("a") VALUES (1)') == "INSERT t"
    assert statement_kind('DELETE FROM "t" WHERE 1') == "DELETE t"
    assert statement_kind("BEGIN IMMEDIATE") == "BEGIN"
    assert statement_kind('SAVEPOINT "s1"') == "SAVEPOINT"
    assert statement_kind("") == "?"
