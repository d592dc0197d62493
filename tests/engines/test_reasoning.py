"""Prompt rendering: chat roles the model's template does not know."""


def test_the_developer_role_is_rendered_as_system_when_the_template_lacks_it():
    from openrft.engines.reasoning import render_prompt
    from openrft.models import load_tokenizer

    tokenizer = load_tokenizer("default")
    as_developer, _ = render_prompt(tokenizer, [{"role": "developer", "content": "Answer in JSON."},
                                                {"role": "user", "content": "hi"}], None)
    as_system, _ = render_prompt(tokenizer, [{"role": "system", "content": "Answer in JSON."},
                                             {"role": "user", "content": "hi"}], None)
    assert as_developer == as_system and "developer" not in as_developer
