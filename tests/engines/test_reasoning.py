"""Prompt rendering: chat roles the model's template does not know; the reasoning levels."""


def test_the_developer_role_is_rendered_as_system_when_the_template_lacks_it():
    from openrft.engines.reasoning import render_prompt
    from openrft.models import load_tokenizer

    tokenizer = load_tokenizer("default")
    as_developer, _ = render_prompt(tokenizer, [{"role": "developer", "content": "Answer in JSON."},
                                                {"role": "user", "content": "hi"}], None)
    as_system, _ = render_prompt(tokenizer, [{"role": "system", "content": "Answer in JSON."},
                                             {"role": "user", "content": "hi"}], None)
    assert as_developer == as_system and "developer" not in as_developer


def test_openais_reasoning_efforts_are_read_by_one_table():
    import pytest

    from openrft.engines import EngineError
    from openrft.engines.reasoning import effort_level

    assert [effort_level(e) for e in (None, "default", "none", "minimal", "low", "medium", "high", "xhigh", "max")] \
        == [None, None, None, "low", "low", "medium", "high", "high", "high"]
    with pytest.raises(EngineError, match="reasoning_effort: expected one of default, none, minimal"):
        effort_level("extreme")
