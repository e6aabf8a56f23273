from keras_vs.changes import Change, Plan


def test_a_change_prints_one_line_with_what_where_and_why():
    change = Change("move", "drop", new_layer="bn_dropout", where="after bn",
                    feeds=("bn (direct)",), rate=0.5, note="forks: kept")
    assert str(change) == "move    drop as 'bn_dropout' after bn (rate=0.5); fed bn (direct); forks: kept"


def test_a_replacement_prints_its_beta():
    assert "(beta=0.1)" in str(Change("replace", "drop", new_layer="drop_uout", rate=0.1))


def test_a_plan_splits_changes_from_kept_pairs():
    plan = Plan([Change("remove", "a", rate=0.2), Change("keep", "b", note="why")], "remove")
    assert [c.layer for c in plan.changes] == ["a"] and [c.layer for c in plan.kept] == ["b"]
    assert str(plan).splitlines()[0] == "policy 'remove': 1 change(s), 1 kept"


def test_an_empty_plan_says_nothing_feeds_a_bn():
    assert str(Plan([], "head")) == "policy 'head': no changes (no dropout feeds a BN)"
