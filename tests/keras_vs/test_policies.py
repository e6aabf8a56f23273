import keras
import pytest
from keras import layers as L

import keras_vs as kvs
from keras_vs import match as match_lib
from keras_vs import policies
from keras_vs import vocab
from keras_vs.policies import POLICY_CLASSES, Planner, run_policy


def _model():
    x = keras.Input((4,))
    y = L.BatchNormalization(name="bn")(L.Dropout(0.3, name="drop")(x))
    return keras.Model(x, L.Dense(2, name="fc")(y))


def _outcome(policy, model=None, **options):
    return run_policy(match_lib.match(model or _model()), policy, options)


@pytest.mark.parametrize(
    "policy, action", [("after_bn", "move"), ("head", "remove"), ("uout", "replace"), ("remove", "remove")]
)
def test_each_policy_records_its_change_and_the_edges_to_edit(policy, action):
    outcome = _outcome(policy)
    assert outcome.changes[0].action == action and outcome.changes[0].layer == "drop"
    assert outcome.actions  # what rewrite rebuilds: never empty when a change is reported


@pytest.mark.parametrize("policy", vocab.POLICIES)
def test_every_policy_of_the_vocabulary_plans_a_change_of_the_dropout_before_bn(policy):
    assert "drop" in {c.layer for c in _outcome(policy).changes}


def test_head_inserts_one_dropout_before_the_classifier():
    inserted = [c for c in _outcome("head").changes if c.action == "insert"]
    assert [(c.new_layer, c.where) for c in inserted] == [("head_dropout", "before fc")]


def test_the_policy_table_has_one_class_per_name_of_the_vocabulary():
    assert set(POLICY_CLASSES) == set(vocab.POLICIES)
    assert all(cls.name == name for name, cls in POLICY_CLASSES.items())
    assert POLICY_CLASSES["after_bn"] is policies.AfterBNPolicy


def test_a_policy_class_turns_a_match_into_changes_actions_and_sources():
    match = match_lib.match(_model())
    outcome = policies.RemovePolicy(match, {}).outcome()
    (drop,) = match.dropouts
    assert [str(c) for c in outcome.changes] == ["remove  drop (rate=0.3); fed bn (direct)"]
    assert outcome.sources == {drop.source}
    (edge,) = [e.edge for e in drop.edges]
    assert [a.kind for a in outcome.actions[edge.key]] == ["bypass"]


def test_the_options_a_policy_takes_are_those_plan_accepts():
    assert policies.RemovePolicy.OPTIONS == ("share_weights",)
    assert "beta" in policies.UoutPolicy.OPTIONS and "rate" not in policies.UoutPolicy.OPTIONS
    with pytest.raises(ValueError, match="takes share_weights"):
        kvs.plan(_model(), "remove", rate=0.1)


def test_after_bn_places_one_layer_per_set_of_landing_edges():
    x = keras.Input((4,))
    y = L.BatchNormalization(name="bn")(L.Add()([L.Dropout(0.2, name="a")(x), L.Dropout(0.4, name="b")(x)]))
    outcome = _outcome("after_bn", keras.Model(x, y))
    moves = [c for c in outcome.changes if c.action == "move"]
    # Both dropouts land after bn as one layer: the largest rate wins.
    assert [(c.layer, c.new_layer, c.rate) for c in moves] == [("a", "bn_dropout", 0.4),
                                                              ("b", "bn_dropout", 0.4)]


def test_landing_skips_a_bn_that_would_be_fed_directly():
    x = keras.Input((4,))
    y = L.BatchNormalization(name="bn1")(L.Dropout(0.2, name="d")(x))
    y = L.BatchNormalization(name="bn2")(L.Activation("relu")(y))
    match = match_lib.match(keras.Model(x, y))
    (reach,) = match.dropouts[0].reaches
    place = policies.after_bn.landing(reach)
    assert place.placed == ("bn2",) and place.where == "after bn2"


def test_a_change_in_a_nested_model_called_twice_says_every_call_changes():
    ix = keras.Input((4,))
    inner = keras.Model(ix, L.BatchNormalization(name="bn")(L.Dropout(0.2, name="d")(ix)), name="sub")
    x = keras.Input((4,))
    model = keras.Model(x, L.Add()([inner(x), inner(x)]))
    (change,) = _outcome("remove", model).changes
    assert change.layer == "sub/d"
    assert "inside nested model 'sub', called 2 times: every call changes" in change.note


def test_planner_is_deprecated_and_names_run_policy():
    with pytest.warns(DeprecationWarning, match="run_policy"):
        planner = Planner(_model(), "remove", {})
    assert [c.layer for c in planner.changes] == ["drop"] and planner.actions
