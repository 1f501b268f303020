"""Published examples: HEFT on Topcuoglu et al. 2002, PEFT on Arabnejad and Barbosa 2014."""

import pytest
from paper_dags import arabnejad_2014, topcuoglu_2002
from planc.compiler.scheduling import Method, schedule, validate
from planc.compiler.scheduling.peft import rank_oct
from planc.compiler.scheduling.problem import compile_problem
from planc.compiler.scheduling.ranks import optimistic_cost_table, upward_rank


def test_heft_on_the_heft_paper_example_has_its_published_makespan_80() -> None:
    g, platform = topcuoglu_2002()
    s = schedule(g, platform, method="heft")
    validate(g, platform, s)
    assert s.makespan == pytest.approx(80.0)
    assert s.method is Method.HEFT


def test_upward_ranks_of_the_heft_paper_example() -> None:
    g, platform = topcuoglu_2002()
    prob = compile_problem(g, platform)
    rank = dict(zip(prob.tasks, upward_rank(prob), strict=True))
    expected = {1: 108.0, 2: 77.0, 3: 80.0, 4: 80.0, 5: 69.0, 6: 63.333, 7: 42.667, 8: 35.667,
                9: 44.333, 10: 14.667}
    assert rank == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("method", ["ours", "exact", "auto"])
def test_ours_and_exact_are_no_worse_than_heft_on_the_heft_paper_example(method: str) -> None:
    g, platform = topcuoglu_2002()
    s = schedule(g, platform, method=method)
    validate(g, platform, s)
    assert s.makespan <= 80.0 + 1e-9
    exact = schedule(g, platform, method="exact")
    assert exact.makespan <= s.makespan + 1e-9


def test_peft_on_the_peft_paper_example_has_its_published_makespan_122() -> None:
    g, platform = arabnejad_2014()
    s = schedule(g, platform, method="peft")
    validate(g, platform, s)
    assert s.makespan == pytest.approx(122.0)


def test_optimistic_cost_table_of_the_peft_paper_example() -> None:
    g, platform = arabnejad_2014()
    prob = compile_problem(g, platform)
    table = dict(zip(prob.tasks, optimistic_cost_table(prob), strict=True))
    expected = {1: [64, 68, 86], 2: [42, 39, 42], 3: [27, 41, 43], 4: [42, 39, 50], 5: [28, 37, 28],
                6: [42, 39, 44], 7: [13, 16, 22], 8: [13, 16, 33], 9: [13, 16, 20], 10: [0, 0, 0]}
    assert table == {t: pytest.approx(row) for t, row in expected.items()}
    ranks = dict(zip(prob.tasks, rank_oct(optimistic_cost_table(prob)), strict=True))
    assert ranks[1] == pytest.approx(218 / 3)


def test_ours_beats_peft_on_the_peft_paper_example() -> None:
    g, platform = arabnejad_2014()
    ours = schedule(g, platform, method="ours")
    validate(g, platform, ours)
    assert ours.makespan <= 122.0 + 1e-9
