"""Screenshots of what an operator sees in the Prefect UI, taken by a real browser.

    python benchmarks/ui_screenshots.py --out reports/ui

Starts a Prefect server on loopback (its own PREFECT_HOME), runs through it one clean
`cropvlm extract` (generated receipts), one with bad input (a PDF cut short, a file that
is not a document, a blank page), and the `evaluate` flow on four generated receipts,
then photographs each flow run's artifacts and the artifacts themselves with headless
Chromium (Debian package `chromium`). The documents and databases live in a temporary
folder; only the PNGs are written to --out (`reports/ui` holds the last ones).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = str(REPO / "templates/receipt.yaml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def write_documents(work: Path) -> tuple[Path, Path]:
    from cropvlm.synthetic import write_dataset
    from PIL import Image

    clean, bad = work / "clean", work / "bad"
    write_dataset(clean, n=4, seed=2026, kinds=("receipt",))
    write_dataset(bad, n=2, seed=2027, kinds=("receipt",))
    for folder in (clean, bad):
        (folder / "labels.jsonl").unlink(missing_ok=True)
    pdf = next(bad.glob("*.pdf"), None)
    source = pdf.read_bytes() if pdf else b"%PDF-1.7\n"
    (bad / "cut-short.pdf").write_bytes(source[:1000])
    (bad / "not-a-document.pdf").write_bytes(b"this is a text file with a .pdf name\n")
    Image.new("RGB", (1240, 1754), "white").save(bad / "blank-scan.png")
    return clean, bad


def screenshot(chromium: str, url: str, path: Path, height: int = 1000) -> None:
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size=1920,{height}", "--virtual-time-budget=20000", f"--screenshot={path}", url],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)  # a third of the bytes
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/ui")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="cropvlm-ui-") as tmp:
        work = Path(tmp)
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": api,
               "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "DATABASE_URL": f"sqlite:///{work / 'cropvlm.db'}", "CROPVLM_ARTIFACTS_URI": str(work / "artifacts")}
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT, cwd=work)
        try:
            wait_for(api + "/health")
            clean, bad = write_documents(work)
            cropvlm = [sys.executable, "-m", "cli.main"]
            for folder in (clean, bad):
                subprocess.run([*cropvlm, "extract", str(folder), "--templates", TEMPLATE], env=env, cwd=REPO,
                               check=False, timeout=900)
            subprocess.run([sys.executable, "-c", "from flows.evaluate import evaluate; "
                            f"evaluate(synthetic=4, templates=[{TEMPLATE!r}], out={str(work / 'eval')!r}, "
                            "policies=['full', 'default'], full_resolution=False)"],
                           env=env, cwd=REPO, check=True, timeout=900)
            os.environ["PREFECT_API_URL"] = api
            shoot(args.chromium, f"http://127.0.0.1:{port}", out)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


def shoot(chromium: str, ui: str, out: Path) -> None:
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort=FlowRunSort.START_TIME_ASC)
        runs = [r for r in runs if r.parent_task_run_id is None]
        artifacts = [a for a in client.read_artifacts() if a.key and a.type in ("markdown", "table", "image")]
        names = ["extract-clean", "extract-with-failures", "evaluate"]
        for name, run in zip(names, runs):
            screenshot(chromium, f"{ui}/runs/flow-run/{run.id}", out / f"{name}-run.png")
            for artifact in artifacts:
                if artifact.flow_run_id == run.id:
                    screenshot(chromium, f"{ui}/artifacts/artifact/{artifact.id}", out / f"{name}-{artifact.key}.png",
                               height=800)


if __name__ == "__main__":
    raise SystemExit(main())
