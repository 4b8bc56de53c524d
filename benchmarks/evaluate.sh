#!/usr/bin/env bash
# Side-by-side evaluation of the default reader with every baseline crop policy (README "Benchmarks").
#   benchmarks/evaluate.sh [SROIE_DIR]     (default ../shared/data/sroie_dev; outputs under /tmp)
# 1. real receipts (no gold boxes: no oracle row); 2. synthetic receipts + invoices (with the oracle).
set -euo pipefail
cd "$(dirname "$0")/.."
SROIE="${1:-../shared/data/sroie_dev}"
cropvlm evaluate "$SROIE" --templates templates/receipt.yaml --out /tmp/eval-sroie
cropvlm evaluate --synthetic 60 --templates templates/receipt.yaml --templates templates/invoice.yaml --out /tmp/eval-synth
