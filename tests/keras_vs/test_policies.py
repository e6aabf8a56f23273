import keras
import pytest
from keras import layers as L

from keras_vs import vocab
from keras_vs.policies import Planner


def _model():
    x = keras.Input((4,))
    y = L.BatchNormalization(name="bn")(L.Dropout(0.3, name="drop")(x))
    return keras.Model(x, L.Dense(2, name="fc")(y))


@pytest.mark.parametrize(
    "policy, action", [("after_bn", "move"), ("head", "remove"), ("uout", "replace"), ("remove", "remove")]
)
def test_each_policy_records_its_change_and_the_edges_to_edit(policy, action):
    planner = Planner(_model(), policy, {})
    assert planner.changes[0].action == action and planner.changes[0].layer == "drop"
    assert planner.actions  # what rewrite rebuilds: never empty when a change is reported


@pytest.mark.parametrize("policy", vocab.POLICIES)
def test_every_policy_of_the_vocabulary_plans_a_change_of_the_dropout_before_bn(policy):
    assert "drop" in {c.layer for c in Planner(_model(), policy, {}).changes}


def test_head_inserts_one_dropout_before_the_classifier():
    inserted = [c for c in Planner(_model(), "head", {}).changes if c.action == "insert"]
    assert [(c.new_layer, c.where) for c in inserted] == [("head_dropout", "before fc")]
