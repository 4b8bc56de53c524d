"""The application layer: extract a batch of documents, retrain the crop policy, evaluate,
with the per-run parameter models and the per-worker model cache they share.

Plain Python: imports cropvlm/ and storage/, never Prefect. flows/ and tasks/ orchestrate
it; tests and benchmarks call it directly.
"""
