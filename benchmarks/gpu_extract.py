"""The whole extract path on a GPU: SmolVLM-256M-sized policy + reader, batches across documents.

    python benchmarks/gpu_extract.py                              # CUDA, 64/128/256/512 requests
    python benchmarks/gpu_extract.py --device cpu --tiny          # smoke test, < 1 minute
    python benchmarks/gpu_extract.py --json out.json --rounds 3
    python benchmarks/gpu_extract.py --reader-batch 64 --prefetch both   # reader prefetch off vs on
    python benchmarks/gpu_extract.py --shrink both --image-device both    # the image-input levers
    python benchmarks/gpu_extract.py --tensors both                       # pages uploaded once per call
    python benchmarks/gpu_extract.py --variant batch=1024,policy_batch=512,reader_batch=512 \
        --variant batch=1024,side_stream=off,interleave=off           # rows with exactly these settings

Builds two Idefics3 checkpoints of SmolVLM-256M size with random weights (SigLIP-B/16 at
512 px, pixel shuffle 4 -> 64 image tokens, SmolLM2-135M-sized decoder: hidden 576, 30
layers, 9 heads, 3 kv heads, MLP 1536, vocab 49152), saved in bf16 and loaded with
`from_pretrained` like real ones (one for the policy, one for the reader). Renders synthetic
receipts and invoices, then runs `cropvlm.pipeline.crop_then_answer` with `HfPolicy` and
`HfReader` at each batch size (requests = pages x 4 fields, pages from many documents).
Reports pages/s, policy and reader seconds, peak `torch.cuda.max_memory_allocated` and GPU
utilisation sampled from `nvidia-smi` in a thread, and where each model's time goes
(`stage_seconds`): processor calls (`*_preprocess_s`), `model.generate` (`*_generate_s`) and
the rest of the calling thread's time (`*_other_s`: encoding, unless the reader's prefetch
does it in its thread, waiting for it, decoding). The builders save the slow PIL image
processor; `--image-processor` (default auto: torchvision's where it imports, as a real
checkpoint loads) swaps it, see `hf_image_processor.py`. `--reader-batch` / `--policy-batch` split
each batch's requests into calls of that many, so that `--prefetch` (reader and policy encode
the next call's inputs in a thread while the model runs) has something to overlap; `both`
measures every batch size without, then with it. `--shrink off` feeds every request its
full-resolution page as before `cropvlm.hf.image_inputs` (on: each distinct page resized once
per call to the processor's own target); `--image-device cpu` keeps a torchvision image
processor on the CPU (auto: on the GPU); `--tensors off` lets the processor convert every
request's PIL images itself (on: each distinct page uploaded once per call, crops sliced from
it on the GPU). Random weights never stop early, so
every answer has the full `--reader-tokens` and every box `--policy-tokens` tokens (the
lengths of a real `"[x1, y1, x2, y2]."` and a brief answer): speed does not depend on weights.
Random weights also emit no parsable box: with `--boxes fixed` (default) each such output is
replaced by a fixed box per field, so the reader gets page + crop (two images, 128 image
tokens) as in production; `--boxes policy` keeps the fallback (page only, one image).
`--interleave on` (default) lets `crop_then_answer` interleave policy and reader calls where
the policy makes several (`--policy-batch`); `--side-stream on` (default) encodes ahead on a
side CUDA stream; `--tokenizer-threads on` sets TOKENIZERS_PARALLELISM; `--static-decode on` generates with
a static KV cache, which transformers compiles on CUDA (each row's untimed round pays it). Every batch's pages
are copies (each its own image object, made before timing): what is done once per distinct
page sees as many pages as in production. `--variant KEY=VALUE,...` (repeatable) measures
rows with exactly those settings instead of the product of the flags; the JSON is rewritten
after every row, so a run cut short keeps what it measured.

Needs the `gpu` extra (torch, transformers>=5, peft, accelerate) plus the project's own
dependencies (pymupdf, pillow, pyyaml) for rendering.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests" / "cropvlm"))  # tiny_models: checkpoint builders
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from gpu_measure import GpuUtilSampler, stage_seconds  # noqa: E402
from gpu_workload import FIELDS_PER_PAGE, build_checkpoints, fields, policy_class, synthetic_pages  # noqa: E402
from hf_image_processor import CHOICES, HELP, use_image_processor  # noqa: E402

SETTINGS = {  # a row's settings: flag defaults, overridden per --variant
    "batch": int, "prefetch": "on_off", "shrink": "on_off", "image_device": str, "tensors": "on_off",
    "policy_batch": int, "reader_batch": int, "tokenizer_threads": "on_off", "interleave": "on_off",
    "boxes": str, "side_stream": "on_off", "vision_once": "on_off", "static_decode": "on_off",
}


def parse_variant(text: str, defaults: dict) -> dict:
    """`"batch=1024,tensors=off,policy_batch=512"` -> the defaults with those settings."""
    setting = dict(defaults)
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        kind = SETTINGS.get(key.strip())
        if kind is None:
            raise SystemExit(f"--variant: unknown setting {key!r}; known: {', '.join(SETTINGS)}")
        value = value.strip()
        if kind == "on_off":
            if value not in ("on", "off"):
                raise SystemExit(f"--variant: {key} must be on or off, got {value!r}")
            setting[key.strip()] = value == "on"
        else:
            setting[key.strip()] = kind(value) if value not in ("", "none") else None
    return setting


def measure_batch(policy, reader, specs, batch_pages, setting: dict, args, seconds: dict) -> dict:
    """`args.rounds` batches of `setting["batch"]` requests (pages x the fields): one report row."""
    import torch

    from cropvlm.pipeline import crop_then_answer, interleaves

    cuda = args.device.startswith("cuda")
    n_pages = max(1, setting["batch"] // FIELDS_PER_PAGE)
    requests = n_pages * FIELDS_PER_PAGE
    prefetch, shrink, image_device, tensors = (setting[k] for k in ("prefetch", "shrink", "image_device", "tensors"))
    policy.batch_size = min(setting["policy_batch"] or requests, requests)
    policy.prefetch = prefetch
    reader.batch_size = min(setting["reader_batch"] or requests, requests)
    reader.prefetch = prefetch
    policy.decode = reader.decode = "static" if setting["static_decode"] else "dynamic"
    for loaded in (policy._loaded, reader._loaded):
        loaded.shrink_images, loaded.image_device, loaded.image_tensors = shrink, image_device, tensors
        loaded.side_stream, loaded.vision_once = setting["side_stream"], setting["vision_once"]
    # Read by the tokenizers library at each batch encode: its own threads for the prompts' tokens.
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if setting["tokenizer_threads"] else "false"
    if setting["boxes"] not in ("fixed", "policy"):
        raise ValueError(f"boxes must be fixed or policy, got {setting['boxes']!r}")
    policy.fixed_boxes = setting["boxes"] == "fixed"
    interleave = setting["interleave"]
    # interleaved, the reader's calls split each policy wave; else the whole batch
    waves = [min(policy.batch_size, requests - start) for start in range(0, requests, policy.batch_size)]
    reader_calls = (sum(math.ceil(w / reader.batch_size) for w in waves)
                    if interleave and interleaves(policy, reader, requests) else math.ceil(requests / reader.batch_size))
    # Untimed rounds with this row's settings first: on an H100 the first row after loading ran
    # up to 2x slower than the same settings later (kernels and allocator for new shapes).
    warmup_started = time.perf_counter()  # includes any compile (--static-decode on)
    for round_ in range(args.warmup_rounds):
        crop_then_answer(batch_pages(n_pages, round_ * n_pages), specs, policy, reader, interleave=interleave)
    warmup_s = time.perf_counter() - warmup_started
    batches = [batch_pages(n_pages, round_ * n_pages) for round_ in range(args.rounds)]  # copied before timing
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    sampler = GpuUtilSampler() if cuda else None
    if sampler:
        sampler.start()
    invalid_before = policy.invalid_count
    seconds.clear()
    policy_s = reader_s = 0.0
    started = time.perf_counter()
    crops = 0
    for round_ in range(args.rounds):
        result = crop_then_answer(batches[round_], specs, policy, reader, interleave=interleave)
        crops += sum(r.crop is not None for r in result.results)
        policy_s += result.policy_seconds
        reader_s += result.reader_seconds
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    util = sampler.stop() if sampler else {"util_mean": None, "util_max": None, "util_samples": 0}
    pages_done = n_pages * args.rounds
    stages = {}
    for name, total in (("policy", policy_s), ("reader", reader_s)):
        pre, gen = seconds.get(f"{name}_preprocess_s", 0.0), seconds.get(f"{name}_generate_s", 0.0)
        stages.update({f"{name}_preprocess_s": round(pre, 3), f"{name}_generate_s": round(gen, 3),
                       f"{name}_other_s": round(total - gen, 3)})
    return {
        "batch_requests": requests, "pages_per_batch": n_pages, "rounds": args.rounds,
        "reader_batch": reader.batch_size, "reader_calls": reader_calls,
        "policy_batch": policy.batch_size, "policy_calls": math.ceil(requests / policy.batch_size),
        "prefetch": prefetch, "shrink": shrink, "image_device": image_device, "tensors": tensors,
        "tokenizer_threads": setting["tokenizer_threads"], "side_stream": setting["side_stream"],
        "vision_once": setting["vision_once"], "static_decode": setting["static_decode"],
        "interleaved": interleave and interleaves(policy, reader, requests),
        "boxes": setting["boxes"], "reader_crop_share": round(crops / (requests * args.rounds), 3),
        "pages_per_s": round(pages_done / wall, 2), "answers_per_s": round(pages_done * len(specs) / wall, 1),
        "policy_s": round(policy_s, 3), "reader_s": round(reader_s, 3), "wall_s": round(wall, 3),
        "warmup_s": round(warmup_s, 1), **stages,
        # pages/s if only model.generate took time (both models, as measured in this row)
        "generate_only_pages_per_s": round(pages_done / max(seconds.get("policy_generate_s", 0.0)
                                                            + seconds.get("reader_generate_s", 0.0), 1e-9), 1),
        "invalid_boxes": policy.invalid_count - invalid_before,
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        **util,
    }


def format_row(row: dict) -> str:
    return (
        f"batch {row['batch_requests']:4d} ({row['pages_per_batch']:3d} pages x {FIELDS_PER_PAGE}), policy "
        f"{row['policy_calls']} x {row['policy_batch']}, reader "
        f"{row['reader_calls']} x {row['reader_batch']}, prefetch {'on ' if row['prefetch'] else 'off'}, "
        f"shrink {'on ' if row['shrink'] else 'off'}, images on {row['image_device']}, "
        f"tensors {'on ' if row['tensors'] else 'off'}, tokenizer threads "
        f"{'on ' if row['tokenizer_threads'] else 'off'}, side stream {'on ' if row['side_stream'] else 'off'}, "
        f"vision once {'on ' if row['vision_once'] else 'off'}, "
        f"static decode {'on ' if row['static_decode'] else 'off'}, "
        f"interleaved {'yes' if row['interleaved'] else 'no '}, "
        f"crops {row['reader_crop_share']:.0%}: "
        f"{row['pages_per_s']:7.2f} pages/s (generate only {row['generate_only_pages_per_s']})  "
        f"policy {row['policy_s']:6.2f} s  reader {row['reader_s']:6.2f} s  "
        f"peak {row['peak_gib']} GiB  util mean {row['util_mean']} max {row['util_max']} %\n" + "".join(
            f"    {name:6s} preprocess {row[f'{name}_preprocess_s']:6.2f} s  generate {row[f'{name}_generate_s']:6.2f} s"
            f"  other {row[f'{name}_other_s']:6.2f} s\n" for name in ("policy", "reader")
        ).rstrip("\n")
    )


def run(args: argparse.Namespace) -> dict:
    import torch

    from cropvlm.hf import HfReader
    from cropvlm.pipeline import PageRef, crop_then_answer

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available: use --device cpu --tiny for a smoke test")
    if not cuda:
        torch.set_num_threads(1)  # tiny matmuls: thread hand-offs cost more than they save
    folder = Path(tempfile.mkdtemp(prefix="cropvlm-gpu-extract-"))
    try:
        policy_path, reader_path = build_checkpoints(folder, args.tiny)
        started = time.perf_counter()
        common = dict(device=args.device, dtype=args.dtype, attn_implementation=args.attn)
        resolution = None if args.tiny else args.resolution
        policy = policy_class()(str(policy_path), resolution=resolution, max_new_tokens=args.policy_tokens,
                                batch_size=max(args.batch_sizes), **common)
        reader = HfReader(str(reader_path), resolution=resolution, max_new_tokens=args.reader_tokens,
                          batch_size=max(args.batch_sizes), **common)
        processors = sorted({use_image_processor(policy.processor, args.image_processor),
                             use_image_processor(reader.processor, args.image_processor)})
        params = sum(p.numel() for p in policy.model.parameters())
        print(f"loaded in {time.perf_counter() - started:.1f} s: {params / 1e6:.1f}M parameters each, "
              f"{policy.model.dtype} on {policy.model.device}, image processor {', '.join(processors)}", flush=True)

        specs = fields()
        max_pages = max(v["batch"] for v in args.variants) // FIELDS_PER_PAGE
        started = time.perf_counter()
        images = synthetic_pages(min(max_pages, args.unique_pages), args.dpi)
        print(f"rendered {len(images)} distinct pages ({images[0].size[0]}x{images[0].size[1]} px) "
              f"in {time.perf_counter() - started:.1f} s", flush=True)

        def batch_pages(n_pages: int, offset: int) -> list[PageRef]:
            # many documents per batch: every page is its own document and its own image object
            # (a copy: what is done once per distinct page must not see fewer pages than production)
            return [PageRef(f"doc-{offset + i}", 1, images[(offset + i) % len(images)].copy()) for i in range(n_pages)]

        header = {
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__, "transformers": __import__("transformers").__version__,
            "model": "tiny idefics3" if args.tiny else "SmolVLM-256M-sized idefics3 (random weights)",
            "parameters_m": round(params / 1e6, 1), "dtype": str(policy.model.dtype),
            "image_processor_choice": args.image_processor, "image_processor": processors,
            "policy_version": policy.version, "reader_version": reader.version,
            "policy_tokens": args.policy_tokens, "reader_tokens": args.reader_tokens,
            "fields_per_page": FIELDS_PER_PAGE,
        }
        rows = []
        with stage_seconds({"policy": policy.model, "reader": reader.model}) as seconds:
            # warm-up: kernels, allocator, processor caches
            crop_then_answer(batch_pages(2, 0), specs, policy, reader)
            if set(seconds) != {"policy_preprocess_s", "policy_generate_s", "reader_preprocess_s", "reader_generate_s"}:
                raise SystemExit(f"stage timers saw only {sorted(seconds)}: do HfPolicy and HfReader still "
                                 "call scoring.encode and model.generate?")
            for setting in args.variants:
                try:
                    rows.append(measure_batch(policy, reader, specs, batch_pages, setting, args, seconds))
                except Exception as exc:  # noqa: BLE001 - one failing variant must not lose the others
                    rows.append({**setting, "error": f"{type(exc).__name__}: {exc}"})
                    print(f"{setting}: FAILED {rows[-1]['error']}", flush=True)
                else:
                    print(format_row(rows[-1]), flush=True)
                if args.json:  # after every row: a run cut short by a time limit keeps what it measured
                    Path(args.json).write_text(json.dumps({**header, "rows": rows}, indent=2) + "\n")
        return {**header, "rows": rows}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="auto", help="auto = bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (smoke test)")
    parser.add_argument("--batch-sizes", default=None, help="requests per call, comma separated "
                        "(default 64,128,256,512; --tiny: 8,16)")
    parser.add_argument("--rounds", type=int, default=2, help="timed batches per size")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="untimed batches before each row")
    parser.add_argument("--resolution", type=int, default=512, help="longest edge fed to the encoder")
    parser.add_argument("--policy-tokens", type=int, default=17, help='"[12, 34, 56, 78]." is ~17 tokens')
    parser.add_argument("--reader-tokens", type=int, default=8)
    parser.add_argument("--unique-pages", type=int, default=32, help="distinct rendered pages, cycled")
    parser.add_argument("--dpi", type=int, default=None, help="render dpi (default 150; --tiny: 50)")
    parser.add_argument("--attn", default=None, help="attn_implementation, e.g. sdpa or flash_attention_2")
    parser.add_argument("--image-processor", choices=CHOICES, default="auto", help=HELP)
    parser.add_argument("--reader-batch", type=int, default=None,
                        help="requests per reader call (default: the whole batch, one call)")
    parser.add_argument("--policy-batch", type=int, default=None,
                        help="requests per policy call (default: the whole batch, one call)")
    parser.add_argument("--prefetch", choices=("on", "off", "both"), default="on",
                        help="policy and reader encode their next call's inputs in a thread (both: off, then on)")
    parser.add_argument("--shrink", choices=("on", "off", "both"), default="on",
                        help="each distinct page resized once to the processor's target (both: off, then on)")
    parser.add_argument("--image-device", choices=("auto", "cpu", "both"), default="auto",
                        help="where a torchvision image processor runs: auto = the model's GPU (both: cpu, then auto)")
    parser.add_argument("--tensors", choices=("on", "off", "both"), default="on",
                        help="GPU image processor: each distinct page uploaded once per call, crops sliced "
                             "from it (both: off, then on)")
    parser.add_argument("--boxes", choices=("fixed", "policy"), default="fixed",
                        help="fixed: a fixed box per field where the random policy's output does not parse, "
                             "so the reader reads page + crop as in production; policy: its fallback (page only)")
    parser.add_argument("--tokenizer-threads", choices=("on", "off", "both"), default="off",
                        help="TOKENIZERS_PARALLELISM for the prompts' tokens (both: off, then on)")
    parser.add_argument("--interleave", choices=("on", "off"), default="on",
                        help="policy and reader calls interleaved where the policy makes several calls "
                             "(cropvlm.pipeline); off: all policy calls, then all reader calls")
    parser.add_argument("--side-stream", choices=("on", "off"), default="on",
                        help="CUDA: inputs encoded ahead on a side stream (scoring.encode_ahead); off: the default stream")
    parser.add_argument("--vision-once", choices=("on", "off"), default="on",
                        help="each distinct image through the vision encoder once per call (scoring.encode_distinct)")
    parser.add_argument("--static-decode", choices=("on", "off"), default="off",
                        help="generate with a static KV cache, which transformers compiles on CUDA (CUDA graphs); "
                             "the row's untimed round pays the compile")
    parser.add_argument("--variant", action="append", default=None, metavar="KEY=VALUE,...",
                        help="one row with these settings over the flags' (repeatable; replaces the product "
                             f"of the flags): {', '.join(SETTINGS)}, e.g. batch=1024,tensors=off,policy_batch=512")
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    sizes = args.batch_sizes or ("8,16" if args.tiny else "64,128,256,512")
    args.batch_sizes = [int(s) for s in sizes.split(",")]
    args.prefetch = {"on": [True], "off": [False], "both": [False, True]}[args.prefetch]
    args.shrink = {"on": [True], "off": [False], "both": [False, True]}[args.shrink]
    args.image_device = {"auto": ["auto"], "cpu": ["cpu"], "both": ["cpu", "auto"]}[args.image_device]
    args.tensors = {"on": [True], "off": [False], "both": [False, True]}[args.tensors]
    args.tokenizer_threads = {"on": [True], "off": [False], "both": [False, True]}[args.tokenizer_threads]
    keys = ("batch", "prefetch", "shrink", "image_device", "tensors", "tokenizer_threads")
    product = [dict(zip(keys, values), policy_batch=args.policy_batch, reader_batch=args.reader_batch,
                    interleave=args.interleave == "on", boxes=args.boxes, side_stream=args.side_stream == "on",
                    vision_once=args.vision_once == "on", static_decode=args.static_decode == "on")
               for values in itertools.product(args.batch_sizes, args.prefetch, args.shrink, args.image_device,
                                               args.tensors, args.tokenizer_threads)]
    args.variants = [parse_variant(v, product[0]) for v in args.variant] if args.variant else product
    for name in ("reader_batch", "policy_batch"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    args.dpi = args.dpi or (50 if args.tiny else 150)
    if args.tiny:
        args.unique_pages = min(args.unique_pages, 4)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
