"""Deterministic synthetic invoices and receipts with gold answers and value boxes.

Pure Python + PyMuPDF + Pillow + numpy; nothing here knows about Prefect, S3 or SQL.
"""

from cropvlm.synthetic.dataset import write_dataset
from cropvlm.synthetic.document import GoldField, SyntheticDocument, generate_document
from cropvlm.synthetic.languages import LANGUAGES

__all__ = ["LANGUAGES", "GoldField", "SyntheticDocument", "generate_document", "write_dataset"]
