"""Scenes and queries must be prose: what the bundled model wrote instead is refused."""

import pytest

from synthq.tasks.attribute.outputs import Grounding
from synthq.tasks.core.prose import prose_problem
from synthq.tasks.llm.engine import without_caps
from synthq.tasks.synthesize.outputs import Synthesis

COMPOSITIONS = {"ability": "a", "knowledge": "b", "extra_information": "c", "output": "d"}
GOOD_SCENE = "A home baker moved to a colder flat and her starter stopped rising, so she looks for feeding advice."


@pytest.mark.parametrize("text, problem", [
    ("sceen", "fewer than 8"),
    ("2018-04-23T19:36:27.375Z", "fewer than 8"),
    ("Serves 2-3 people, 2-3 people, 4-5 people, 6-7 people, 8-10 people, 10-12 people", "have a letter"),
    ("the answer the answer the answer the answer the answer the answer the answer", "repeats"),
])
def test_not_prose(text, problem):
    assert problem in prose_problem(text, 8)


def test_prose_passes():
    assert prose_problem(GOOD_SCENE, 8) is None


@pytest.mark.parametrize("model", [Grounding, without_caps(Grounding)])
def test_scene_validator_holds_with_and_without_caps(model):
    with pytest.raises(ValueError, match="scene has 1 words"):
        model.model_validate({"scene": "sceen", "query_compositions": COMPOSITIONS})
    assert model.model_validate({"scene": GOOD_SCENE, "query_compositions": COMPOSITIONS}).scene == GOOD_SCENE


def test_uncapped_model_takes_long_queries():
    import trafilatura

    from synthq.tasks.sample import PAGES

    page = trafilatura.extract((PAGES / "01-sourdough-starter.html").read_text())
    long_query = "Please review this guide and explain each claim in it:\n" + page[:2400]
    row = {"thought": "t", "scene": GOOD_SCENE, "query_compositions": COMPOSITIONS, "query": long_query}
    with pytest.raises(ValueError, match="at most 1500"):
        Synthesis.model_validate(row)
    assert without_caps(Synthesis).model_validate(row).query == long_query
    schema = without_caps(Synthesis).model_json_schema()
    assert "maxLength" not in str(schema)
