"""Training the crop policy: SFT warm start, GRPO with a frozen reader as judge.

Backend-agnostic: one SFT loop and one GRPO implementation drive any policy that offers
the small protocol in `protocol.py` (the default heatmap policy and the Hugging Face VLM
policy both do). Everything here is plain Python + torch; the retrain flow is a thin
Prefect wrapper around `loop.py`.
"""
