"""The objective of openrft.training.algorithm, checked against its definition."""

import math

import pytest
import torch

from openrft.training import algorithm


def test_group_advantages_are_centred_and_scaled():
    adv = algorithm.group_advantages([0.0, 0.5, 1.0], scale=True)
    assert abs(sum(adv)) < 1e-9
    std = math.sqrt(sum(a * a for a in adv) / 3)
    assert abs(std - 1.0) < 1e-4
    unscaled = algorithm.group_advantages([0.0, 0.5, 1.0], scale=False)  # Dr. GRPO
    assert unscaled == pytest.approx([-0.5, 0.0, 0.5])


def test_zero_signal_group_gives_zero_advantage():
    assert algorithm.is_zero_signal([0.3, 0.3, 0.3])
    assert algorithm.group_advantages([0.3, 0.3, 0.3]) == [0.0, 0.0, 0.0]
    assert not algorithm.is_zero_signal([0.3, 0.31])


def test_first_pass_is_the_plain_policy_gradient():
    """With old = current (ratio 1) the clipped loss's gradient is −A·∇logp / tokens."""
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], requires_grad=True)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    terms = algorithm.clipped_policy_loss(logp, logp.detach(), adv, mask, clip_epsilon=0.2, total_tokens=3)
    terms.loss.backward()
    expected = -(adv.unsqueeze(1) * mask) / 3
    assert torch.allclose(logp.grad, expected)
    assert terms.clip_fraction_sum == 0 and terms.tokens == 3


def test_clip_stops_the_gradient_beyond_the_trust_region():
    old = torch.tensor([[-1.0]])
    new = torch.tensor([[-1.0 + math.log(1.5)]], requires_grad=True)  # ratio 1.5 > 1.2 with A > 0: clipped
    terms = algorithm.clipped_policy_loss(new, old, torch.tensor([1.0]), torch.ones(1, 1), clip_epsilon=0.2,
                                          total_tokens=1)
    terms.loss.backward()
    assert new.grad.abs().item() == 0.0
    assert terms.clip_fraction_sum == 1.0


def test_kl_penalty_is_zero_at_the_reference_and_positive_away():
    logp = torch.tensor([[-1.0, -1.0]])
    mask = torch.ones(1, 2)
    same = algorithm.clipped_policy_loss(logp, logp, torch.tensor([0.0]), mask, clip_epsilon=0.2, total_tokens=2,
                                         ref_logprobs=logp, kl_coef=0.1)
    assert same.kl_sum == pytest.approx(0.0)
    away = algorithm.clipped_policy_loss(logp, logp, torch.tensor([0.0]), mask, clip_epsilon=0.2, total_tokens=2,
                                         ref_logprobs=logp - 0.5, kl_coef=0.1)
    assert away.kl_sum > 0 and away.loss.item() > 0


def test_prefix_shared_logprobs_match_a_full_forward(embedded_model):
    from openrft.models import load_model

    model, tok = load_model("default")
    prompt = tok.apply_chat_template([{"role": "user", "content": "Name three fruits."}], add_generation_prompt=True,
                                     tokenize=True, return_dict=True)["input_ids"]
    completions = [tok.encode("Apples, pears and plums."), tok.encode("Mango"), tok.encode("I like")]
    logp, mask, _ = algorithm.sequence_logprobs(model, prompt, completions, temperature=0.7)
    for i, c in enumerate(completions):
        with torch.no_grad():
            logits = model(torch.tensor([prompt + c])).logits[0, len(prompt) - 1:-1].float() / 0.7
        ref = torch.log_softmax(logits, -1).gather(1, torch.tensor(c).unsqueeze(1)).squeeze(1)
        assert torch.allclose(logp[i, :len(c)].detach(), ref, atol=1e-4)
        assert mask[i].sum() == len(c)


def test_shared_instructions_give_the_gradient_of_whole_prompts(embedded_model):
    """Running the step's common instructions once and sending the groups' summed gradient through them
    (`SharedInstructions.backward`) gives the gradient of running every prompt whole; leaving that backward out
    does not (the instructions' part of the gradient is missing)."""
    from peft import LoraConfig, get_peft_model

    from openrft.models import load_model

    model, tok = load_model("default", dtype="float32")
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    instructions = "You classify EU legal acts into EuroVoc domains: politics, law, trade, finance. Act: "
    prompts = [tok.apply_chat_template([{"role": "user", "content": instructions + act}], add_generation_prompt=True,
                                       tokenize=True, return_dict=True)["input_ids"]
               for act in ("Fishing quotas for cod.", "Rail freight tariffs and tolls.")]
    completions = [[tok.encode("law, trade"), tok.encode("finance")], [tok.encode("transport"), tok.encode("law")]]

    def gradients(shared: bool, send_back: bool = True) -> dict[str, torch.Tensor]:
        model.zero_grad()
        ins = algorithm.SharedInstructions.of(model, prompts) if shared else None
        if shared:
            assert ins is not None and len(ins.token_ids) > 20
        for prompt, group in zip(prompts, completions):
            logp, mask, _ = algorithm.sequence_logprobs(model, prompt, group, temperature=1.0, instructions=ins)
            ((logp * mask).sum(-1) * torch.tensor([1.0, -0.5])).sum().backward()
        if ins is not None and send_back:
            ins.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    def error(a, b):
        return max(float((a[k] - b[k]).norm() / a[k].norm()) for k in a)

    whole = gradients(shared=False)
    assert error(whole, gradients(shared=True)) < 1e-4
    assert error(whole, gradients(shared=True, send_back=False)) > 1e-2
