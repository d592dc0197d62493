"""Supervised fine-tuning (OpenAI's `method.type: "supervised"`): next-token cross-entropy on assistant messages.

A row is a conversation (openrft.data.formats). It is rendered once through the model's chat template, and
the tokens of each trained assistant message (weight 1, the default; `weight: 0` messages are context only)
are found by rendering the conversation up to that message twice: the prefix with the generation prompt
(`<|im_start|>assistant\\n`), and the prefix plus the message. The characters between the two renderings are
the message's (its text and the template's end-of-turn token; the whitespace the template puts after it is
left out), and the tokens of the whole rendering whose characters fall there are the targets. This is what
TRL does for chat templates without `{% generation %}` markers, done on characters so that a token merged
across the boundary cannot shift the mask. A template that renders a past assistant turn differently from a
new one (some drop earlier reasoning) fails this check: the row is refused, never trained on a wrong mask.

The loss of a batch is the sum of the target tokens' cross-entropy divided by the batch's target-token count
(every token weighs the same, as in TRL's SFTTrainer); `mean_token_accuracy` is the share of target tokens that
are the model's argmax prediction. Those are OpenAI's SFT metrics (`train_loss`, `train_mean_token_accuracy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from openrft.data.formats import trained_on
from openrft.errors import InputError


class EncodingError(InputError, ValueError):
    """A row the chat template cannot render into a training sequence; the message names what is wrong."""


@dataclass
class Encoded:
    """One training sequence: its token ids and which of them are targets of the loss."""

    ids: list[int]
    targets: list[bool]  # targets[t]: token t is predicted (from tokens < t) and counted in the loss

    @property
    def n_targets(self) -> int:
        return sum(self.targets)


def _template_text(tokenizer) -> str:
    template = getattr(tokenizer, "chat_template", None) or ""
    return " ".join(template.values()) if isinstance(template, dict) else template


def template_messages(tokenizer, messages: list[dict], *, tools: list | None = None, where: str = "row") -> list[dict]:
    """Messages as a chat template takes them: text parts joined into one string, OpenAI-only keys (`weight`,
    `type`, `refusal`) dropped, `developer` as `system` for templates that do not know it. Tool calls and tools
    are refused for a template that does not render them (they would silently vanish from the training text)."""
    from openrft.engines.reasoning import template_roles

    template = _template_text(tokenizer)
    out = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        clean = {"role": message["role"], "content": content}
        for key in ("name", "tool_calls", "tool_call_id"):
            if message.get(key) is not None:
                clean[key] = message[key]
        if clean.get("tool_calls") and "tool_calls" not in template:
            raise EncodingError(f"{where}: messages[{i}].tool_calls: this model's chat template does not render tool "
                                "calls, so they cannot be trained on (use a model whose template does)")
        if clean["content"] is None:
            clean["content"] = ""
        out.append(clean)
    if tools and "tools" not in template:
        raise EncodingError(f"{where}: tools: this model's chat template does not render tool definitions")
    return template_roles(tokenizer, out)


def encode_conversation(tokenizer, messages: list[dict], targets: list[int], *, tools: list | None = None,
                        where: str = "row") -> Encoded:
    """Token ids of the rendered conversation and the mask of the tokens of the messages `targets` (indices)."""
    if not getattr(tokenizer, "is_fast", False):
        raise EncodingError(f"{where}: finding assistant tokens needs a fast tokenizer (with offset mappings)")
    messages = template_messages(tokenizer, messages, tools=tools, where=where)
    extra = {"tools": tools} if tools else {}

    def render(part: list[dict], generation: bool) -> str:
        return tokenizer.apply_chat_template(part, tokenize=False, add_generation_prompt=generation, **extra)

    text = render(messages, False)
    spans = []
    for i in targets:
        before, upto = render(messages[:i], True), render(messages[:i + 1], False)
        if not upto.startswith(before) or not text.startswith(upto):
            raise EncodingError(f"{where}: messages[{i}]: the chat template does not render this assistant message "
                                "as the continuation of the conversation before it, so its tokens cannot be found")
        spans.append((len(before), len(upto.rstrip())))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    mask = [any(start <= begin and end <= stop for start, stop in spans) and end > begin
            for begin, end in encoded["offset_mapping"]]
    mask[0] = False  # the first token has nothing to be predicted from
    return Encoded(ids, mask)


def encode_sft_row(tokenizer, row: dict, where: str = "row") -> Encoded:
    """An SFT row as one training sequence: targets are the assistant messages with weight 1 (default)."""
    targets = [i for i, m in enumerate(row["messages"]) if trained_on(m)]
    encoded = encode_conversation(tokenizer, row["messages"], targets, tools=row.get("tools"), where=where)
    if not encoded.n_targets:
        raise EncodingError(f"{where}: messages: the assistant messages render to no tokens")
    return encoded


def token_logprobs(model, sequences: list[Encoded]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """For each sequence: the log-probabilities of its target tokens [n_targets], and whether each target token
    is the model's argmax prediction [n_targets] (bool). One forward pass over the right-padded batch; the output
    layer runs only on the positions that predict a target (transformers' `logits_to_keep`)."""
    device = next(model.parameters()).device
    length = max(len(s.ids) for s in sequences)
    ids = torch.zeros((len(sequences), length), dtype=torch.long, device=device)
    attention = torch.zeros((len(sequences), length), dtype=torch.long, device=device)
    target = torch.zeros((len(sequences), length), dtype=torch.bool, device=device)
    for row, s in enumerate(sequences):
        ids[row, :len(s.ids)] = torch.tensor(s.ids, device=device)
        attention[row, :len(s.ids)] = 1
        target[row, :len(s.targets)] = torch.tensor(s.targets, device=device)
    predicting = target[:, 1:].any(dim=0).nonzero().squeeze(-1)  # position p predicts token p + 1
    logits = model(input_ids=ids, attention_mask=attention, logits_to_keep=predicting).logits.float()
    logp = torch.log_softmax(logits, dim=-1)  # [B, len(predicting), V]
    next_ids = ids[:, predicting + 1]
    chosen = torch.gather(logp, 2, next_ids.unsqueeze(-1)).squeeze(-1)
    correct = logits.argmax(dim=-1) == next_ids
    keep = target[:, predicting + 1]
    return [chosen[row][keep[row]] for row in range(len(sequences))], \
        [correct[row][keep[row]] for row in range(len(sequences))]


class SupervisedObjective:
    """The SFT loss over a batch of encoded rows (see the module's docstring), for openrft.training.offline."""

    method = "supervised"
    metric_names = ("loss", "mean_token_accuracy")

    def encode(self, tokenizer, row: dict, where: str) -> Encoded:
        return encode_sft_row(tokenizer, row, where)

    def tokens(self, example: Encoded) -> int:
        return len(example.ids)

    def batch(self, model, examples: list[Encoded], *, train: bool) -> dict:
        """Accumulate the batch's gradient (when `train`), one row at a time; returns the batch's metrics."""
        total = sum(e.n_targets for e in examples)
        loss_sum, correct = 0.0, 0
        for example in examples:
            with torch.set_grad_enabled(train):
                [logprobs], [right] = token_logprobs(model, [example])
                loss = -logprobs.sum()
                if train:
                    (loss / total).backward()
            loss_sum += float(loss.detach())
            correct += int(right.sum())
        return {"loss": loss_sum / total, "mean_token_accuracy": correct / total, "target_tokens": total}
