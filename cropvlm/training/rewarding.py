"""The judge: the frozen reader answers from each sampled crop; rewards score the answers.

For a batch of examples and the policy's samples, every sampled box is cut from the
full-resolution page and sent with the page to the reader in one batched call (the OCR
reader caches repeated crops and pages within a call). The rewards of `cropvlm.rewards`
are computed per sample and combined with the configured weights; the likelihood reward
is asked of readers that can score (`score`), and skipped (None) for the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cropvlm.errors import TrainingError
from cropvlm.pipeline import read_request
from cropvlm.policies.samples import PolicySamples
from cropvlm.rewards import BUILT_IN, combine
from cropvlm.training.examples import Example, ExampleSet
from cropvlm.training.grpo import RewardBatch


class ReaderJudge:
    def __init__(self, reader, weights: Mapping[str, float], examples: ExampleSet) -> None:
        unknown = set(weights) - set(BUILT_IN)
        if unknown:
            raise TrainingError(f"unknown rewards {sorted(unknown)}; known: {sorted(BUILT_IN)}")
        self.reader, self.weights, self.examples = reader, dict(weights), examples
        self.can_score = callable(getattr(reader, "score", None))

    def __call__(self, batch: Sequence[Example], samples: PolicySamples) -> RewardBatch:
        rows = [batch[g] for g in samples.group]
        pages = [self.examples.pages.page(e.doc, e.page_number) for e in rows]
        requests = [read_request(page, proposal, e.spec) for page, proposal, e in zip(pages, samples.proposals, rows)]
        crops = [r.crop for r in requests]
        try:
            answers = self.reader.answer(requests)
        except Exception as exc:  # noqa: BLE001 - any reader failure stops training cleanly
            raise TrainingError(f"reader {getattr(self.reader, 'version', self.reader)} failed: "
                                f"{type(exc).__name__}: {exc}") from exc
        gold_loglik: list[float | None] = [None] * len(rows)
        if self.weights.get("likelihood") and self.can_score:
            try:
                gold_loglik = list(self.reader.score(pages, crops, [e.spec for e in rows],
                                                     [e.answer for e in rows], reduction="mean"))
            except Exception as exc:  # noqa: BLE001
                raise TrainingError(f"reader {self.reader.version} failed to score: {exc}") from exc
        columns = {
            "predictions": [a.text for a in answers],
            "gold": [e.answer for e in rows],
            "answer_types": [e.spec.type for e in rows],
            "gold_loglik": gold_loglik,
        }
        components = {name: BUILT_IN[name](samples.texts, **columns) for name in self.weights}
        return RewardBatch(total=combine(components, self.weights), components=components)
