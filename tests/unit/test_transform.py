"""The feature transform: unknown bucket, imputation, scaling, and an exact JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reference.features import CATEGORICAL, NUMERIC
from reference.transform import UNKNOWN, FeatureTransform


@pytest.fixture(scope="module")
def fitted(winter):
    return FeatureTransform.fit(winter, min_category_count=20)


def test_vocabularies_come_from_the_training_window(fitted, winter):
    assert fitted.vocab["origin"] == ["EWR", "JFK", "LGA"]
    counts = winter["dest"].value_counts()
    assert set(fitted.vocab["dest"]) == set(counts[counts >= 20].index)
    assert fitted.cardinalities == [len(fitted.vocab[c]) + 1 for c in CATEGORICAL]


def test_apply_shapes_and_scaling(fitted, winter):
    enc = fitted.apply(winter)
    assert enc.cat.shape == (len(winter), len(CATEGORICAL))
    assert enc.num.shape == (len(winter), fitted.num_features) and enc.num.dtype == np.float32
    assert np.isfinite(enc.num).all()
    distance = enc.num[:, list(NUMERIC).index("distance")]
    assert abs(distance.mean()) < 0.01 and abs(distance.std() - 1) < 0.01


def test_unseen_and_missing_categories_go_to_the_unknown_bucket(fitted, july):
    rows = july.head(3).copy()
    rows["carrier"] = rows["carrier"].astype(object)
    rows.loc[rows.index[0], "carrier"] = "ZZ"  # a new carrier code
    rows.loc[rows.index[1], "carrier"] = None  # a missing one
    enc = fitted.apply(rows)
    col = CATEGORICAL.index("carrier")
    assert enc.cat[0, col] == UNKNOWN and enc.cat[1, col] == UNKNOWN and enc.cat[2, col] != UNKNOWN
    assert enc.unknown["carrier"] == 1  # unseen is counted; missing is not "unseen"


def test_missing_numbers_are_imputed_and_flagged(fitted, july):
    rows = july.head(2).copy()
    rows.loc[rows.index[0], "pressure"] = np.nan
    enc = fitted.apply(rows)
    flag = (
        len(NUMERIC) + 1 + list(NUMERIC).index("pressure")
    )  # flags follow the values (month is 2 wide)
    assert enc.num[0, flag] == 1.0 and enc.num[1, flag] == 0.0
    value = list(NUMERIC).index("pressure") + 1
    expected = (fitted.median["pressure"] - fitted.mean["pressure"]) / fitted.std["pressure"]
    assert enc.num[0, value] == pytest.approx(expected, rel=1e-5)


def test_json_round_trip_is_exact(fitted, july, tmp_path):
    path = fitted.save(tmp_path / "t.json")
    loaded = FeatureTransform.load(path)
    assert loaded == fitted
    a, b = fitted.apply(july), loaded.apply(july)
    np.testing.assert_array_equal(a.cat, b.cat)
    np.testing.assert_array_equal(a.num, b.num)


def test_load_refuses_what_is_not_a_transform(fitted, tmp_path):
    data = fitted.to_dict() | {"format": "something-else"}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a feature transform"):
        FeatureTransform.load(tmp_path / "bad.json")


def test_missing_feature_column_is_named(fitted, july):
    with pytest.raises(KeyError, match="temp"):
        fitted.apply(july.drop(columns=["temp"]))


def test_small_batches_take_a_fast_path_with_the_same_codes(fitted, july):
    rows = july.sample(200, random_state=3).reset_index(drop=True)
    rows.loc[0, "carrier"] = "ZZ"  # unseen
    rows.loc[1, "dest"] = None  # missing
    rows.loc[2, "temp"] = np.nan
    big = fitted.apply(rows)  # DataFrame: the vectorised path above 256 rows is forced below
    import reference.transform as module

    small = fitted.apply({c: rows[c].tolist() for c in rows.columns})  # a mapping of lists
    assert len(rows) <= module.SMALL_BATCH
    vectorised = module.SMALL_BATCH
    try:
        module.SMALL_BATCH = 0
        forced = fitted.apply(rows)
    finally:
        module.SMALL_BATCH = vectorised
    for enc in (small, big):
        np.testing.assert_array_equal(enc.cat, forced.cat)
        np.testing.assert_allclose(enc.num, forced.num)
        assert enc.unknown == forced.unknown
    # int-like floats and numpy ints match the vocabulary's text, a fractional hour does not
    assert (
        fitted.apply({**{c: rows[c].tolist()[:1] for c in rows.columns}, "hour": [9.0]}).cat[0, 3]
        != UNKNOWN
    )
    assert (
        fitted.apply({**{c: rows[c].tolist()[:1] for c in rows.columns}, "hour": [9.5]}).cat[0, 3]
        == UNKNOWN
    )


def test_the_servers_plain_columns_encode_exactly_as_the_dataframe(fitted, july):
    # what the request schema hands the transform: str, int, float and None in lists
    rows = july.sample(64, random_state=5).reset_index(drop=True)
    frame = rows.astype(object).where(rows.notna(), None)
    columns = {c: frame[c].tolist() for c in rows.columns}
    assert {type(v) for v in columns["carrier"]} == {str}
    assert {type(v) for v in columns["hour"]} == {int}
    assert None in columns["wind_dir"] or None in columns["pressure"]  # missing readings
    import reference.transform as module

    vectorised = module.SMALL_BATCH
    try:
        module.SMALL_BATCH = 0  # the pandas path: the reference
        reference = fitted.apply(rows)
    finally:
        module.SMALL_BATCH = vectorised
    for enc in (fitted.apply(columns), fitted.apply(rows)):
        np.testing.assert_array_equal(enc.cat, reference.cat)
        assert enc.num.tobytes() == reference.num.tobytes()  # bit for bit
        assert enc.num.flags.c_contiguous and enc.unknown == reference.unknown
