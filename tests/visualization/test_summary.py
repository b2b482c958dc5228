"""The report's summary: the facts as data, and the sentences that say them."""

from __future__ import annotations

import optuna

from optuna_bigmodel.visualization import summary_data, summary_lines
from optuna_bigmodel.visualization._trials import SPEC_ATTR
from tests.visualization.studies import GATES, MAX_STEPS, learned_record, structure_record


def test_summary_of_a_real_study(real_study: optuna.Study) -> None:
    summary = summary_data(real_study)
    best = real_study.best_trial
    assert summary.counts == {"COMPLETE": 2, "PRUNED": 2}
    assert summary.n_best == 1 and summary.best[0].number == best.number
    assert summary.best[0].values == [best.value] and summary.best[0].params == best.params
    assert summary.best[0].learned == {"lr": learned_record(best.number)["lr"]["final"]}
    gates = structure_record(best.number)["gates"]
    assert summary.best[0].kept_gates == [g for g in GATES if gates[g]["kept"]]
    assert summary.best[0].cut_gates == [g for g in GATES if not gates[g]["kept"]]
    # Only lr differs between the two complete trials, so it explains everything.
    assert summary.importances == {"lr": 1.0} and summary.importance_note is None
    assert summary.total_steps == 2 * 2 + 2 * MAX_STEPS and summary.saved_by_pruning == 12

    lines = summary_lines(summary)
    assert lines[0] == "Study 'tiny': 4 trials (2 complete, 2 pruned)."
    assert lines[1].startswith(f"Best trial: #{best.number}, val_loss = {best.value:.6g}, ")
    assert "from the best achievable value (0.01)" in lines[1]
    assert lines[2] == f"Its configuration: lr = {best.params['lr']:.4g}, offset = 0."
    assert lines[3] == (
        f"Inside training it learned lr = {summary.best[0].learned['lr']:.4g} (final values); "
        f"it kept 2 of 3 gates (cut: {', '.join(summary.best[0].cut_gates)}); "
        "its weights went from 3,000 to 2,000."
    )
    assert lines[4] == "Knobs that mattered most: lr (100%)."
    assert lines[5] == (
        "Compute: 20 training steps in all (a full trial is 8 steps); pruning saved 12 steps (38%)."
    )


def test_nothing_learned_fixed_knobs_and_too_few_trials() -> None:
    study = optuna.create_study()
    knobs = {"dropout": {"axis": "strategy", "mode": "fixed", "value": 0.1}}
    study.set_user_attr(SPEC_ATTR, {"knobs": knobs})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    lines = summary_lines(summary_data(study))
    assert "(fixed in every trial: dropout = 0.1)" in lines[2]
    assert (
        lines[3]
        == "Inside training it learned nothing: every knob was sampled by the study or fixed."
    )
    assert lines[4] == (
        "Which knobs mattered most: not known yet "
        "(needs at least 2 complete trials; the study has 1)."
    )


def test_failed_only_and_running() -> None:
    study = optuna.create_study()
    for reason in ("oom", "oom", "nan"):
        trial = study.ask()
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    study.ask()
    summary = summary_data(study)
    assert summary.best == [] and summary.fail_reasons == {"oom": 2, "nan": 1}
    lines = summary_lines(summary)
    assert lines[0] == (
        "Study '" + study.study_name + "': 4 trials (3 failed, 1 running). All 3 finished trials "
        "failed, so there is no result yet. Why trials failed: nan (1), oom (2). The study is "
        "still running (1 trial in progress)."
    )
    assert len(lines) == 2 and lines[1].startswith("Compute: 0 training steps")


def test_multi_objective_lists_the_pareto_front() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    for a, b in ((1.0, 4.0), (2.0, 2.0), (3.0, 3.0), (4.0, 1.0)):
        trial = study.ask()
        trial.suggest_float("x", 0, 10)
        study.tell(trial, (a, b))
    summary = summary_data(study)
    assert [b.number for b in summary.best] == [0, 1, 3] and summary.n_best == 3
    lines = summary_lines(summary)
    assert lines[1] == (
        "Pareto front: 3 trials, none better on every objective: "
        "#0 (objective 0 1, objective 1 4); #1 (objective 0 2, objective 1 2); "
        "#3 (objective 0 4, objective 1 1)."
    )
    assert lines[2].startswith("Knobs that mattered most for objective 0: x (")


def test_no_importances_when_every_trial_scores_the_same() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1) * 0 + 1.0, n_trials=3)
    summary = summary_data(study)
    assert summary.importances == {}
    assert summary.importance_note == (
        "every complete trial has the same value, so no knob made a difference"
    )


def test_a_structure_without_gate_records_still_tells_the_weights() -> None:
    study = optuna.create_study()
    trial = study.ask()
    # The shape of Structure.to_dict(): kept unit indices per gate, no keep-probabilities.
    structure = {"gates": {"mlp": [0, 2]}, "choices": {}, "params_before": 900, "params_after": 600}
    trial.set_user_attr("structure", structure)
    study.tell(trial, 1.0)
    (best,) = summary_data(study).best
    assert (best.kept_gates, best.params_before, best.params_after) == (None, 900, 600)
    assert summary_lines(summary_data(study))[3] == (
        "Inside training its weights went from 900 to 600."
    )
