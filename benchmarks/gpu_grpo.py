"""A short GRPO run of the Hugging Face policy on a GPU: speed, time split, memory, utilisation.

    python benchmarks/gpu_grpo.py                          # CUDA, SmolVLM-256M-sized, 2 + 10 steps
    python benchmarks/gpu_grpo.py --device cpu --tiny      # smoke test, < 90 s on a laptop CPU
    python benchmarks/gpu_grpo.py --json grpo.json --lora-r 128 --prompts 16 --steps 10

Builds two Idefics3 checkpoints with random weights as `gpu_extract.py` does (`gpu_workload.py`)
(SmolVLM-256M size: SigLIP-B/16 at 512 px, 64 image tokens per image, SmolLM2-135M-sized
decoder; `--tiny`: the test suite's tiny model), one for the policy and one for the reader,
and a LoRA adapter for the policy (r=16, alpha=2r by default; the paper uses r=128, alpha=256)
on the attention and MLP projections (`--lora-targets`; the names match the text decoder's
q/k/v/o/gate/up/down and the vision encoder's q/k/v, so gradients also flow through the
vision encoder). Renders synthetic receipts and invoices (`cropvlm.synthetic`) and builds an
`ExampleSet` from their gold answers, then runs `cropvlm.training.grpo.grpo_step` with
`ReaderJudge` as the training loop does: G=6 samples per prompt, 16 prompts per step, the
paper's settings (temperature 0.8, beta 0.01 to the reference, max grad norm 0.1, lr 5e-6),
reward = the reader's mean log-likelihood of the gold answer given [page, crop]
(`HfReader.score`) + the format reward. The KL reference is `policy.frozen_copy()`: the
same model with the adapter disabled (no second copy of the weights).

Timed steps follow `--warmup` untimed ones. Reported per step: seconds in sampling
(generation, and the teacher-forced forward with gradient that gives the log-probs), judging
(the reader's answers and likelihood scores, cropping), the reference's forward, and the
update (backward, clipping, optimizer step: the rest of the step); steps/s, samples/s, peak
`torch.cuda.max_memory_allocated`, GPU utilisation from `nvidia-smi` sampled in a thread.
Random weights rarely emit a valid box or stop early, so every completion has about
`--policy-tokens` tokens (as long as a real `"[x1, y1, x2, y2]."`); the judge gets a random
crop for each invalid box (`with_random_crops`, off with `--no-random-crops`), so it reads
two images per sample as in a real run and rewards differ within a group (real gradients).
The rewards mean nothing. The builders save a PIL image processor; by default it is swapped
for the torchvision one that transformers 5 loads for a real checkpoint (`--image-processor`,
see `hf_image_processor.py`):
on an H200 a step took 12.4 s with the PIL one (and one image per judge sample) against
5.1 s with the torchvision one (two): image preprocessing on the CPU dominates.

Needs the `gpu` extra (torch, transformers>=5, peft) plus the project's dependencies
(pymupdf, pillow, pyyaml); no TRL, no network (checkpoints are built in code).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests" / "cropvlm"))  # tiny_models: checkpoint builders
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from gpu_measure import GpuUtilSampler  # noqa: E402
from gpu_workload import build_checkpoints  # noqa: E402
from hf_image_processor import CHOICES, HELP, use_image_processor  # noqa: E402

LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


class Clock:
    """Seconds per named phase; nested phases are subtracted from the enclosing one."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.seconds: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []

    def wrap(self, fn, name: str, *, inside: dict[str, str] | None = None):
        """`fn` timed as `name`, or as `inside[enclosing phase]` when called within one."""

        def timed(*args, **kwargs):
            label = (inside or {}).get(self.stack[-1], name) if self.stack else name
            self.sync()
            self.stack.append(label)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                elapsed = time.perf_counter() - started
                self.stack.pop()
                self.seconds[label] += elapsed
                if self.stack:
                    self.seconds[self.stack[-1]] -= elapsed  # exclusive time of the parent

        return timed

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()


def make_adapter(base: Path, folder: Path, r: int, alpha: int | None, targets: str) -> Path:
    """A fresh LoRA adapter for `base` (B = 0: the policy starts as the base model)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(base)
    config = LoraConfig(r=r, lora_alpha=alpha or 2 * r, lora_dropout=0.0, target_modules=targets.split(","))
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def with_random_crops(sample, seed: int = 0):
    """`sample` whose invalid boxes are replaced by random ones *for the judge only* (the text,
    tokens and log-probs stay, so the format reward still sees the invalid text): a random
    policy's outputs never parse, and a judge that then reads the page alone would see one
    image per sample instead of two and give every sample of a group the same reward."""
    import random

    from cropvlm.box import Box
    from cropvlm.policies.base import Proposal

    rng = random.Random(seed)

    def sample_with_crops(*args, **kwargs):
        samples = sample(*args, **kwargs)
        for i, proposal in enumerate(samples.proposals):
            if not proposal.valid:
                w, h = rng.randint(10, 60), rng.randint(5, 40)
                x, y = rng.randint(0, 100 - w), rng.randint(0, 100 - h)
                samples.proposals[i] = Proposal(Box(x, y, x + w, y + h), proposal.text, valid=False)
        return samples

    return sample_with_crops


def synthetic_examples(documents: int, dpi: int, view_size: int):
    """An ExampleSet over `documents` synthetic receipts and invoices (4 questions each)."""
    from cropvlm.labels import Label
    from cropvlm.render import RenderConfig
    from cropvlm.synthetic import generate_document
    from cropvlm.synthetic.document import TEMPLATE_DIR
    from cropvlm.templates import load_template
    from cropvlm.training.examples import build_examples

    specs = {spec.field: spec for kind in ("receipt", "invoice")
             for spec in load_template(TEMPLATE_DIR / f"{kind}.yaml").fields}
    files, labels = {}, []
    for seed in range(documents):
        doc = generate_document(("receipt", "invoice")[seed % 2], seed, format="png", dpi=dpi)
        name = doc.name + doc.suffix
        files[name] = doc.data
        labels.extend(Label(name, g.field, g.answer, g.question, g.page_number, g.box) for g in doc.gold)
    return build_examples(labels, specs, files.__getitem__, RenderConfig(dpi=dpi), view_size=view_size,
                          cache=documents)


def run(args: argparse.Namespace) -> dict:
    import random

    import torch

    from cropvlm.hf import HfPolicy, HfReader
    from cropvlm.policies.base import CropRequest
    from cropvlm.training.grpo import GrpoConfig, grpo_step
    from cropvlm.training.rewarding import ReaderJudge

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available: use --device cpu --tiny for a smoke test")
    if not cuda:
        torch.set_num_threads(args.threads)
    whole = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="cropvlm-gpu-grpo-"))
    try:
        policy_path, reader_path = build_checkpoints(folder, args.tiny)
        started = time.perf_counter()
        adapter = make_adapter(policy_path, folder / "lora", args.lora_r, args.lora_alpha, args.lora_targets)
        print(f"built a LoRA adapter (r={args.lora_r}) in {time.perf_counter() - started:.1f} s", flush=True)

        started = time.perf_counter()
        resolution = None if args.tiny else args.resolution
        rows = args.prompts * args.generations
        common = dict(device=args.device, dtype=args.dtype, attn_implementation=args.attn, resolution=resolution)
        policy = HfPolicy(str(policy_path), adapter=str(adapter), trainable=True, max_new_tokens=args.policy_tokens,
                          batch_size=args.policy_batch or rows, **common)
        reader = HfReader(str(reader_path), max_new_tokens=args.reader_tokens, batch_size=args.reader_batch or rows,
                          **common)
        processors = sorted({use_image_processor(policy.processor, args.image_processor),
                             use_image_processor(reader.processor, args.image_processor)})
        reference = policy.frozen_copy()
        params = sum(p.numel() for p in policy.model.parameters())
        trainable = sum(p.numel() for p in policy.parameters())
        print(f"loaded in {time.perf_counter() - started:.1f} s: {params / 1e6:.1f}M parameters each, "
              f"{trainable / 1e6:.2f}M trainable (LoRA), {policy.model.dtype} on {policy.model.device}, "
              f"image processor {', '.join(processors)}", flush=True)

        started = time.perf_counter()
        examples = synthetic_examples(args.documents, args.dpi, view_size=resolution or 64)
        page = examples.pages.page(examples.examples[0].doc, 1)
        print(f"rendered {args.documents} documents, {len(examples.examples)} questions "
              f"({page.size[0]}x{page.size[1]} px pages) in {time.perf_counter() - started:.1f} s", flush=True)

        total_steps = args.warmup + args.steps
        config = GrpoConfig(num_generations=args.generations, prompts_per_step=args.prompts, steps=total_steps,
                            learning_rate=args.lr, reward_weights={"likelihood": 1.0, "format": 1.0})
        judge = ReaderJudge(reader, config.reward_weights, examples)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0)

        clock = Clock(cuda)
        if args.random_crops:
            policy.sample = with_random_crops(policy.sample)
        policy.sample = clock.wrap(policy.sample, "sample.generate")
        policy.logprobs = clock.wrap(policy.logprobs, "policy.forward",
                                     inside={"sample.generate": "sample.forward", "reference": "reference"})
        reference.logprobs = clock.wrap(reference.logprobs, "reference")
        reader.answer = clock.wrap(reader.answer, "judge.answer")
        reader.score = clock.wrap(reader.score, "judge.score")
        timed_judge = clock.wrap(judge, "judge.other")

        curve, timed, sampler = [], [], None
        for step in range(total_steps):
            if step == args.warmup:
                clock.sync()
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                sampler = GpuUtilSampler() if cuda else None
                if sampler:
                    sampler.start()
                clock.seconds.clear()
                timed_started = time.perf_counter()
            rng = random.Random(f"bench:{step}")
            batch = rng.sample(examples.examples, min(args.prompts, len(examples.examples)))
            requests = [CropRequest(examples.view(e), e.spec.question, e.spec.field) for e in batch]
            torch.manual_seed(step)
            step_started = time.perf_counter()
            stats = grpo_step(policy, reference, optimizer, requests, lambda s, b=batch: timed_judge(b, s), config, step)
            clock.sync()
            seconds = time.perf_counter() - step_started
            curve.append({"step": step, "seconds": round(seconds, 3), "reward": round(stats.reward, 4),
                          "format": round(stats.components.get("format", 0.0), 3),
                          "likelihood": round(stats.components.get("likelihood", 0.0), 4),
                          "kl": round(stats.kl, 6), "grad_norm": round(stats.grad_norm, 4), "loss": round(stats.loss, 6)})
            if step >= args.warmup:
                timed.append(seconds)
            print(f"step {step:3d}{' (warm-up)' if step < args.warmup else '':10s} {seconds:7.2f} s  "
                  f"reward {stats.reward:8.3f}  format {curve[-1]['format']:.2f}  kl {stats.kl:.5f}  "
                  f"grad {stats.grad_norm:.3f}", flush=True)
        clock.sync()
        wall = time.perf_counter() - timed_started
        util = sampler.stop() if sampler else {"util_mean": None, "util_max": None, "util_samples": 0}
        steps = len(timed)
        split = {name: round(value / steps, 3) for name, value in sorted(clock.seconds.items())}
        split["update"] = round(wall / steps - sum(clock.seconds.values()) / steps, 3)
        report = {
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__, "transformers": __import__("transformers").__version__,
            "peft": __import__("peft").__version__,
            "model": "tiny idefics3" if args.tiny else "SmolVLM-256M-sized idefics3 (random weights)",
            "parameters_m": round(params / 1e6, 1), "trainable_m": round(trainable / 1e6, 3),
            "dtype": str(policy.model.dtype), "lora_r": args.lora_r, "lora_targets": args.lora_targets,
            "image_processor": processors, "random_crops": args.random_crops,
            "resolution": resolution, "prompts_per_step": args.prompts, "generations": args.generations,
            "samples_per_step": rows, "policy_tokens": args.policy_tokens, "reader_tokens": args.reader_tokens,
            "warmup_steps": args.warmup, "timed_steps": steps,
            "steps_per_s": round(steps / wall, 4), "samples_per_s": round(steps * rows / wall, 2),
            "seconds_per_step": round(wall / steps, 3),
            "step_seconds_median": round(statistics.median(timed), 3),
            "seconds_per_step_split": split,
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            **util,
            "valid_box_fraction": round(statistics.fmean(p["format"] for p in curve[args.warmup:]), 3),
            "total_wall_s": round(time.perf_counter() - whole, 1),
            "policy_version": policy.version, "reader_version": reader.version,
            "curve": curve,
        }
        if not all(math.isfinite(p["loss"]) for p in curve):
            report["warning"] = "non-finite loss"
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def summary(report: dict) -> str:
    split = report["seconds_per_step_split"]
    lines = [
        f"{report['device']}: {report['model']}, {report['parameters_m']}M parameters, "
        f"LoRA r={report['lora_r']} ({report['trainable_m']}M trainable), {report['dtype']}",
        f"{report['prompts_per_step']} prompts x G={report['generations']} = {report['samples_per_step']} samples "
        f"per step, {report['timed_steps']} timed steps after {report['warmup_steps']} warm-up",
        f"{report['steps_per_s']:.3f} steps/s  {report['samples_per_s']:.1f} samples/s  "
        f"{report['seconds_per_step']:.2f} s/step (median {report['step_seconds_median']:.2f})",
        "per step: " + "  ".join(f"{name} {value:.2f} s" for name, value in split.items()),
        f"image processor {', '.join(report['image_processor'])}, random crops for invalid boxes: "
        f"{report['random_crops']}",
        f"peak {report['peak_gib']} GiB  GPU util mean {report['util_mean']} max {report['util_max']} % "
        f"({report['util_samples']} samples)  whole run {report['total_wall_s']} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="auto", help="auto = bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (smoke test)")
    parser.add_argument("--steps", type=int, default=None, help="timed GRPO steps (default 10; --tiny: 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2; --tiny: 1)")
    parser.add_argument("--prompts", type=int, default=None, help="prompts per step (default 16; --tiny: 4)")
    parser.add_argument("--generations", type=int, default=6, help="samples per prompt (G)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=None, help="default 2 x r (the paper: 256 for r=128)")
    parser.add_argument("--lora-targets", default=LORA_TARGETS, help="comma-separated module names")
    parser.add_argument("--lr", type=float, default=5e-6)
    parser.add_argument("--resolution", type=int, default=512, help="longest edge fed to the encoders")
    parser.add_argument("--policy-tokens", type=int, default=17, help='"[12, 34, 56, 78]." is ~17 tokens')
    parser.add_argument("--reader-tokens", type=int, default=8)
    parser.add_argument("--policy-batch", type=int, default=None, help="rows per policy call (default: all samples)")
    parser.add_argument("--reader-batch", type=int, default=None, help="requests per reader call (default: all)")
    parser.add_argument("--documents", type=int, default=None, help="synthetic documents (default 16; --tiny: 4)")
    parser.add_argument("--dpi", type=int, default=None, help="render dpi (default 150; --tiny: 50)")
    parser.add_argument("--image-processor", choices=CHOICES, default="auto", help=HELP)
    parser.add_argument("--no-random-crops", dest="random_crops", action="store_false",
                        help="judge invalid boxes as the full page (default: a random crop, see with_random_crops)")
    parser.add_argument("--attn", default=None, help="attn_implementation, e.g. sdpa or flash_attention_2")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (--device cpu)")
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    tiny = args.tiny
    args.steps = args.steps or (3 if tiny else 10)
    args.warmup = (1 if tiny else 2) if args.warmup is None else args.warmup
    args.prompts = args.prompts or (4 if tiny else 16)
    args.documents = args.documents or (4 if tiny else 16)
    args.dpi = args.dpi or (50 if tiny else 150)
    if args.steps < 1 or args.generations < 2:
        parser.error("--steps must be >= 1 and --generations >= 2")
    report = run(args)
    print(json.dumps({k: v for k, v in report.items() if k != "curve"}, indent=2))
    print(summary(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
