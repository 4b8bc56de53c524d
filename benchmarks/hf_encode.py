"""CPU time of the Hugging Face processor call for a batch of fields: pages shrunk once or
not, every image processed or each distinct one once.

    python benchmarks/hf_encode.py                 # 4 pages x 4 fields, 3 repeats: ~15 s on 2 CPU cores
    python benchmarks/hf_encode.py --pages 8 --repeats 5

Times `cropvlm.hf.scoring.encode` (chat template already rendered; tokenizer and PIL image
processor, as a CPU worker or a GPU worker without torchvision runs it) for the reader's
inputs (page + crop per field) and the policy's (page per field), with SmolVLM-256M's
processor settings (Idefics3, longest edge 512, 64 image tokens per image), on synthetic
invoices and receipts rendered at 150 dpi, every page asked `--fields` questions. `shrink
off` is the processor alone; `on` resizes each distinct page once to the processor's own
target first (`cropvlm.hf.image_inputs`, identical pixels). `distinct on` times
`scoring.encode_distinct` (each distinct image through the image processor once, the
prompts' image blocks expanded as the processor does, each distinct prompt tokenised once),
as `HfPolicy` / `HfReader` encode. Every page is asked the same `--fields` questions.
Reports the median of `--repeats` calls.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "cropvlm"))  # tiny_models: checkpoint builders


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--fields", type=int, default=4, help="questions per page")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokenizer-requests", type=int, default=2048, help="reader prompts in the tokenizer rows")
    args = parser.parse_args(argv)

    import tiny_models

    from cropvlm.hf import loading, prompts, scoring
    from cropvlm.render import RenderConfig, render_document
    from cropvlm.synthetic import generate_document

    with tempfile.TemporaryDirectory() as folder:
        # the processor is SmolVLM-256M's; the model's size does not matter here
        loaded = loading.load(str(tiny_models.build_idefics3(Path(folder) / "m", image_size=512, patch_size=16,
                                                             scale_factor=4)), cache=False)
        pages = []
        for seed in range(args.pages):
            doc = generate_document(("invoice", "receipt")[seed % 2], seed, format="png", dpi=150)
            pages.append(render_document(doc.data, RenderConfig(dpi=150)).pages[0])
        sizes = sorted({p.size for p in pages})
        reader_rows = [[p, p.crop((p.width // 10, p.height // 10, p.width // 2, p.height // 4))]
                       for p in pages for _ in range(args.fields)]
        policy_rows = [[p] for p in pages for _ in range(args.fields)]
        questions = [f"What is field number {k + 1} of this document?" for k in range(args.fields)]
        reader_texts = [prompts.render(loaded.processor, prompts.reader_text(q), 2) for _ in pages for q in questions]
        policy_texts = [prompts.render(loaded.processor, prompts.policy_text(q), 1) for _ in pages for q in questions]
        report = {"pages": args.pages, "fields_per_page": args.fields, "page_sizes": sizes, "rows": []}
        for name, rows, texts in (("reader", reader_rows, reader_texts), ("policy", policy_rows, policy_texts)):
            for shrink, distinct in ((False, False), (True, False), (True, True)):
                loaded.shrink_images = shrink
                encode = scoring.encode_distinct if distinct else scoring.encode
                times = []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    encode(loaded, texts, rows, padding_side="left")
                    times.append(time.perf_counter() - started)
                seconds = statistics.median(times)
                report["rows"].append({"inputs": name, "shrink": shrink, "distinct": distinct, "requests": len(rows),
                                       "seconds": round(seconds, 3), "ms_per_request": round(1000 * seconds / len(rows), 1)})
                print(f"{name:6s} shrink {'on ' if shrink else 'off'}, distinct {'on ' if distinct else 'off'}: "
                      f"{len(rows)} requests in {seconds:.3f} s ({1000 * seconds / len(rows):.1f} ms each)", flush=True)
        report["tokenizer"] = tokenizer_rows(loaded, reader_texts, args.tokenizer_requests)
        print(f"pages: {', '.join(f'{w}x{h}' for w, h in sizes)} px")
        return report


def tokenizer_rows(loaded, texts: list[str], requests: int) -> list[dict]:
    """The prompts' tokens for a GPU-sized batch (`requests` reader prompts, the same few
    questions of every page): every prompt tokenised, as the processor does, or each
    distinct one once, as `encode_distinct` does. The image processor dwarfs this on the
    CPU; on a GPU worker, where it runs on the device, this is what is left of encoding."""
    from cropvlm.hf.scoring import distinct_prompt_tokens, prompt_tokens

    batch = [texts[k % len(texts)] for k in range(requests)]
    rows = []
    for name, tokens, prompts in (("every prompt", prompt_tokens, len(batch)),
                                  ("each distinct prompt once", distinct_prompt_tokens, len(set(batch)))):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            tokens(loaded, batch, "left")
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        rows.append({"tokenised": name, "requests": requests, "prompts": prompts, "seconds": round(seconds, 4)})
        print(f"tokenizer, {name}: {prompts} prompts for {requests} requests in {1000 * seconds:.1f} ms", flush=True)
    return rows


if __name__ == "__main__":
    main()
